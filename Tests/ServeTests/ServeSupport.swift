import Foundation
import IWDetectCore
import IWDetectTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A running `iw-detect serve`, started by a test on 127.0.0.1.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    let dir: TempDir
    let errPath: String
    let outPath: String
    private(set) var port = 0

    /// Starts `serve` on `port` (0: a free one, read from its "listening on" line).
    init(_ dir: TempDir, db: String, port: Int = 0, arguments: [String] = [], environment: [String: String] = [:]) throws {
        self.dir = dir
        let n = UUID().uuidString.prefix(8)
        errPath = dir.write("serve-\(n).err", "")
        outPath = dir.write("serve-\(n).out", "")
        process.executableURL = URL(fileURLWithPath: iwDetectBinary)
        process.arguments = ["serve", "--db", db, "--listen", "127.0.0.1:\(port)"] + arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let range = stderr.range(of: #"listening on 127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                self.port = Int(stderr[range].split(separator: ":").last!)!
                return
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        throw ServeError("serve did not start: \(stderr)")
    }

    var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
    var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    var url: String { "http://127.0.0.1:\(port)" }

    /// SIGTERM, then the exit status.
    @discardableResult
    func terminate(timeout: Double = 60) -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        return wait(timeout: timeout)
    }

    func killNine() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func wait(timeout: Double) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return -1
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

struct ServeError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// An HTTP answer.
struct Answer {
    var status: Int
    var headers: [String: String]
    var body: String
    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
}

/// A plain HTTP request with URLSession's completion-handler API, waited for on this thread.
func http(_ method: String, _ url: String, body: [UInt8] = [], headers: [String: String] = [:], timeout: Double = 20) -> Answer {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    request.timeoutInterval = timeout
    if !body.isEmpty || method == "POST" { request.httpBody = Data(body) }
    for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var answer = Answer(status: 0, headers: [:], body: "")
    URLSession.shared.dataTask(with: request) { data, response, error in
        if let r = response as? HTTPURLResponse {
            var h: [String: String] = [:]
            for (k, v) in r.allHeaderFields { h[String(describing: k).lowercased()] = String(describing: v) }
            answer = Answer(status: r.statusCode, headers: h, body: data.map { String(decoding: $0, as: UTF8.self) } ?? "")
        } else {
            answer = Answer(status: 0, headers: [:], body: error.map { "\($0)" } ?? "")
        }
        done.signal()
    }.resume()
    done.wait()
    return answer
}

func http(_ method: String, _ url: String, text: String, headers: [String: String] = [:]) -> Answer {
    http(method, url, body: Array(text.utf8), headers: headers)
}

/// `bytes` compressed by gzip(1).
func gzipped(_ bytes: [UInt8], _ dir: TempDir) throws -> [UInt8] {
    let path = dir.write("body-\(UUID().uuidString.prefix(8))", bytes: bytes)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/gzip")
    p.arguments = ["-f", "-n", path]
    try p.run()
    p.waitUntilExit()
    return Array(FileManager.default.contents(atPath: path + ".gz")!)
}

/// One inference-log event as JSON text.
func event(_ id: String, seconds: Int, extra: [String: String] = [:]) -> String {
    logLine(time: at(seconds), id: id, extra: extra)
}

/// The database's rows.
func rows(_ db: String, _ sql: String) throws -> [[String]] {
    let d = try Database(path: db, readOnly: true)
    return try d.query(sql, []) { s in (0..<s.columnCount).map { s.isNull(Int32($0)) ? "NULL" : s.text(Int32($0)) } }
}
