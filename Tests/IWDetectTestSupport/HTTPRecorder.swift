import Foundation

/// A loopback HTTP recorder (a real python3 http.server process, `Tests/Fixtures/http_recorder.py`)
/// standing in for a SaaS receiver: it records every request and answers as told (a status,
/// `429:SECONDS` with Retry-After, `hang`, or `body:STATUS:TEXT`; the last answer repeats).
public final class HTTPRecorder: @unchecked Sendable {
    // @unchecked: immutable after init; the process is only read and killed.
    public let process = Process()
    public let requestsFile: String
    public let port: Int

    /// One recorded request.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var headers: [String: String]
        public var body: String
        /// The status it was answered with (0: left hanging).
        public var status: Int
        /// When it arrived (Unix seconds).
        public var at: Double

        /// The body as JSON.
        public var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) }
    }

    /// Starts a recorder in `dir` (on `port`, or a free one).
    public init(_ dir: TempDir, port: Int? = nil, answers: [String] = ["200"], name: String = "recorder") throws {
        let portFile = dir.file("\(name).port")
        requestsFile = dir.file("\(name).requests")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", packageRoot + "/Tests/Fixtures/http_recorder.py", portFile, requestsFile]
            + (port.map { ["--port", String($0)] } ?? []) + answers
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: portFile) && Date() < deadline { usleep(10_000) }
        self.port = Int((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "") ?? 0
    }

    // SIGKILL: a child of the test runner inherits its signal mask, in which SIGTERM may be blocked.
    deinit { stop() }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// The requests so far, in arrival order.
    public var requests: [Request] {
        ((try? String(contentsOfFile: requestsFile, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return Request(method: o["method"] as? String ?? "", path: o["path"] as? String ?? "",
                           headers: o["headers"] as? [String: String] ?? [:], body: o["body"] as? String ?? "",
                           status: o["status"] as? Int ?? 0, at: o["at"] as? Double ?? 0)
        }
    }

    /// Waits until at least `count` requests arrived (or `timeout` seconds).
    @discardableResult
    public func wait(for count: Int, timeout: Double = 20) -> [Request] {
        let deadline = Date().addingTimeInterval(timeout)
        var got = requests
        while got.count < count && Date() < deadline {
            usleep(20_000)
            got = requests
        }
        return got
    }

    /// The same, for async tests: it sleeps without holding a thread of the cooperative pool
    /// (a blocking wait there starves other tests' continuations and their timing checks).
    @discardableResult
    public func wait(for count: Int, timeout: Double = 20) async -> [Request] {
        let deadline = Date().addingTimeInterval(timeout)
        var got = requests
        while got.count < count && Date() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
            got = requests
        }
        return got
    }

    /// A free loopback port (bound and released), for a receiver that starts later.
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
