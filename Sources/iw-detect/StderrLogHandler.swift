import Foundation
import Logging

/// The log handler of the long-running commands: one line per record on standard error, readable
/// (`2026-12-01T21:40:00.123Z info  rules reloaded: …`) or one JSON object (`--log-format json`)
/// for collectors.
struct StderrLogHandler: LogHandler {
    enum Format: String, CaseIterable, Sendable { case text, json }

    let label: String
    let format: Format
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, format: Format) {
        self.label = label
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let more = event.metadata { all.merge(more) { $1 } }
        let time = Date().formatted(.iso8601.year().month().day().timeZone(separator: .omitted).time(includingFractionalSeconds: true))
        let line: String
        switch format {
        case .text:
            let level = event.level.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
            let extra = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = "\(time) \(level) \(event.message)\(extra)\n"
        case .json:
            var object: [String: Any] = ["time": time, "level": event.level.rawValue, "logger": label, "message": "\(event.message)"]
            for (k, v) in all { object[k] = StderrLogHandler.json(v) }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self) + "\n"
        }
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func json(_ v: Logger.Metadata.Value) -> Any {
        switch v {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map(json)
        case .dictionary(let d): return d.mapValues(json)
        }
    }
}
