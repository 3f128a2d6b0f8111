import Foundation
import IWDetectCore

/// A temporary directory removed when the value is deinitialised.
public final class TempDir: @unchecked Sendable {
    // @unchecked: immutable after init.
    public let path: String

    public init() {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("iw-detect-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    public func file(_ name: String) -> String { path + "/" + name }

    @discardableResult
    public func write(_ name: String, _ text: String) -> String {
        let p = file(name)
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }

    @discardableResult
    public func write(_ name: String, bytes: [UInt8]) -> String {
        let p = file(name)
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }
}

/// The package root (the folder holding Package.swift).
public let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    fatalError("Package.swift not found above \(#filePath)")
}()

/// Builds one inference-log line of the monitoring guide's schema; `extra` overrides fields.
public func logLine(time: String, user: String = "u-1", session: String = "s-1", id: String? = nil,
                    injection: Double = 0.01, outputTokens: Int = 200, pii: Bool = false,
                    tools: [String] = [], risk: Double = 0.1, extra: [String: String] = [:]) -> String {
    var fields: [(String, String)] = [
        ("log_id", "\"\(id ?? "log-\(user)-\(time)")\""), ("session_id", "\"\(session)\""), ("user_id", "\"\(user)\""),
        ("source_ip", "\"10.0.0.1\""), ("timestamp", "\"\(time)\""), ("user_input", "\"hello there\""), ("input_tokens", "12"),
        ("input_injection_score", "\(injection)"), ("model_id", "\"m-1\""), ("model_output", "\"a reply\""),
        ("output_tokens", "\(outputTokens)"), ("output_pii_detected", "\(pii)"),
        ("tool_calls", "[" + tools.map { "{\"name\":\"\($0)\"}" }.joined(separator: ",") + "]"),
        ("inference_latency_ms", "300"), ("total_latency_ms", "320"), ("guardrail_triggered", "false"),
        ("guardrail_action", "\"allow\""), ("risk_score", "\(risk)"),
    ]
    for (k, v) in extra {
        if let i = fields.firstIndex(where: { $0.0 == k }) { fields[i].1 = v } else { fields.append((k, v)) }
    }
    return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
}

/// RFC 3339 text for `seconds` after 2026-11-01T00:00:00Z.
public func at(_ seconds: Int) -> String {
    EventTime(micros: 1_793_491_200_000_000 + Int64(seconds) * 1_000_000).description
}

/// The result of running a process.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// The iw-detect binary `swift build` / `swift test` produced.
public var iwDetectBinary: String {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("iw-detect").path,
        packageRoot + "/.build/debug/iw-detect",
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
}

/// Runs `executable` with `arguments` to completion, feeding `input` on stdin.
///
/// Output goes through temporary files, not pipes: tests run in parallel and a child started by
/// another test could inherit a pipe's write end and keep it from ever reaching end-of-file.
public func run(_ executable: String, _ arguments: [String], input: String = "", environment: [String: String] = [:],
                directory: String? = nil) throws -> ProcessResult {
    let io = TempDir()
    let inPath = io.write("stdin", input)
    let outPath = io.write("stdout", "")
    let errPath = io.write("stderr", "")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    p.standardInput = FileHandle(forReadingAtPath: inPath)
    p.standardOutput = FileHandle(forWritingAtPath: outPath)
    p.standardError = FileHandle(forWritingAtPath: errPath)
    try p.run()
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus,
                         stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// Parses JSON lines into dictionaries.
public func jsonLines(_ text: String) -> [[String: Any]] {
    text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

/// Paths inside the checkout that tests read.
public enum IWDetectTestSupportPaths {
    public static var rules: String { packageRoot + "/rules" }
}
