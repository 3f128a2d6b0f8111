import Foundation
import IWDetectCore
import Ingest

/// What an ingest did: the figures `ingest` prints at the end.
public struct IngestSummary: Sendable {
    /// Lines of one kind of input.
    public struct InputCounts: Sendable, Equatable {
        public var read: Int64 = 0
        public var accepted: Int64 = 0
        /// By reason code.
        public var rejected: [String: Int64] = [:]

        public init() {}

        mutating func add(read: Int64, accepted: Int64, rejects: [Reject]) {
            self.read += read
            self.accepted += accepted
            for r in rejects { rejected[r.reason.rawValue, default: 0] += 1 }
        }
    }

    public var linesRead: Int64 = 0
    public var accepted: Int64 = 0
    public var blankLines: Int64 = 0
    public var rejected: [String: Int64] = [:]
    /// The same counts by kind of input (`file`, `stdin`, `http`).
    public var inputs: [String: InputCounts] = [:]
    public var detections: Int64 = 0
    /// Alerts raised, by "rule\tseverity".
    public var alerts: [String: Int64] = [:]
    public var suppressed: [String: Int64] = [:]
    public var duplicateAlerts: Int64 = 0
    public var recomputes: Int64 = 0
    public var commits: Int64 = 0
    public var lateEvents: Int64 = 0
    public var keyOverflow: Int64 = 0
    public var baselineExcluded: Int64 = 0
    /// Events that fired only statistical rules, held in quarantine.
    public var baselineQuarantined: Int64 = 0
    /// Metric values that were missing or not numeric in this run, by metric (skipped, never zero).
    public var baselineSkipped: [(String, Int64)] = []
    public var localDeliveryErrors = 0
    public var resumedAtLine: Int64?
    /// A file with the same first bytes that was ingested before under another path, and the line
    /// this ingest resumed at because of it.
    public var sameContentAs: (path: String, line: Int64)?
    /// The file's checkpoint was for other content (the file was replaced): it was read from the start.
    public var replacedFile = false
    public var seconds: Double = 0
    /// Bytes of the input read and committed in this run.
    public var bytes: Int64 = 0
    /// The input file's size when the run started, and where the run started in it (nil for a pipe).
    public var totalBytes: Int64?
    public var startOffset: Int64 = 0
    /// The signal that stopped the run, and the first line not read (committed up to before it).
    public var interrupted: (signal: Int32, nextLine: Int64)?
    /// Rule-set reloads done, and refused because the new set had errors.
    public var reloads: Int64 = 0
    public var reloadsRefused: Int64 = 0
    /// Per export target: events queued for it, and skipped (it was stalled, or an event was
    /// larger than the receiver takes).
    public var exports: [String: (queued: Int64, skipped: Int64)] = [:]

    public init() {}

    public var rejectedTotal: Int64 { rejected.values.reduce(0, +) }
    public var alertsTotal: Int64 { alerts.values.reduce(0, +) }

    /// The human-readable summary for standard error.
    public func text(source: String) -> String {
        var out: [String] = []
        let rate = seconds > 0 ? Double(linesRead) / seconds : 0
        if let (other, line) = sameContentAs {
            out.append("warning: \(source) starts with the same bytes as \(other), which was ingested up to line \(line - 1); " +
                       "resumed at line \(line) so no event is counted twice (use --reingest to read it from the start)")
        } else if let resumedAtLine {
            out.append("resumed \(source) at line \(resumedAtLine) (already ingested before it)")
        }
        if replacedFile { out.append("\(source) no longer starts with the bytes ingested before: read from the start as a new file") }
        out.append("\(source): \(linesRead) lines read, \(accepted) accepted, \(rejectedTotal) rejected" +
                   (blankLines > 0 ? ", \(blankLines) blank" : "") +
                   String(format: " in %.2fs (%.0f lines/s)", seconds, rate))
        for (reason, n) in rejected.sorted(by: { $0.key < $1.key }) { out.append("  rejected \(reason): \(n)") }
        if rejectedTotal > 0 { out.append("  see them with: iw-detect rejects") }
        out.append("alerts: \(alertsTotal) raised, \(suppressed.values.reduce(0, +)) suppressed as duplicates")
        for (key, n) in alerts.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "\t")
            let rule = String(parts[0])
            out.append("  \(rule) [\(parts.count > 1 ? parts[1] : "")]: \(n) raised, \(suppressed[rule] ?? 0) suppressed")
        }
        for (rule, n) in suppressed.sorted(by: { $0.key < $1.key }) where !alerts.keys.contains(where: { $0.hasPrefix(rule + "\t") }) {
            out.append("  \(rule): 0 raised, \(n) suppressed (into earlier alerts)")
        }
        if duplicateAlerts > 0 { out.append("  \(duplicateAlerts) alerts were already in the database (same input raised before) and were not queued again") }
        if lateEvents > 0 { out.append("late events (beyond the allowed lateness, not counted by windows): \(lateEvents)") }
        if keyOverflow > 0 { out.append("window key cap reached: \(keyOverflow) events not tracked") }
        if reloads + reloadsRefused > 0 { out.append("rules: \(reloads) reload(s), \(reloadsRefused) refused (the previous rules kept running)") }
        if localDeliveryErrors > 0 { out.append("local sink delivery errors: \(localDeliveryErrors) (see iw-detect alerts list)") }
        for (name, e) in exports.sorted(by: { $0.key < $1.key }) {
            out.append("export \(name): \(e.queued) events queued" + (e.skipped > 0 ? ", \(e.skipped) skipped (see iw-detect exports list)" : ""))
        }
        out.append("baseline: \(recomputes) recomputes; \(baselineExcluded) events kept out of it (they fired a security rule or were blocked)"
                   + (baselineQuarantined > 0 ? ", \(baselineQuarantined) quarantined (they fired only statistical rules)" : ""))
        let skipped = baselineSkipped.filter { $0.1 > 0 }
        if !skipped.isEmpty {
            out.append("  metric values missing or not numeric, skipped (never counted as 0): " + skipped.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        }
        return out.joined(separator: "\n")
    }

    /// The summary as JSON, for scripts.
    public var json: JSONValue {
        .object([
            ("lines_read", .int(linesRead)), ("accepted", .int(accepted)), ("blank", .int(blankLines)),
            ("rejected", .object(rejected.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("alerts", .object(alerts.sorted { $0.key < $1.key }.map { ($0.key.replacingOccurrences(of: "\t", with: ":"), .int($0.value)) })),
            ("suppressed", .object(suppressed.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("late_events", .int(lateEvents)), ("baseline_excluded", .int(baselineExcluded)), ("baseline_quarantined", .int(baselineQuarantined)), ("recomputes", .int(recomputes)),
            ("seconds", .number(seconds)), ("bytes", .int(bytes)), ("reloads", .int(reloads)), ("reloads_refused", .int(reloadsRefused)),
            ("exports", .object(exports.sorted { $0.key < $1.key }.map { ($0.key, .object([("queued", .int($0.value.queued)), ("skipped", .int($0.value.skipped))])) })),
            ("interrupted_by", interrupted.map { .string(Interruption.name($0.signal)) } ?? .null),
            ("next_line", interrupted.map { .int($0.nextLine) } ?? .null),
        ])
    }
}
