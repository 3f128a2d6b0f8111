import Foundation
import IWDetectCore

/// The reviewable JSON form of a baseline snapshot (`baseline export` / `baseline import`).
///
/// Keys are in a fixed order and every member is on its own line, so a baseline change reads
/// well in a diff. Entries are the global baseline first, then each segment, metrics in
/// configuration order.
public enum SnapshotFile {
    public static let format = "iw-detect-baseline/1"

    /// The file's content for the model's current snapshot.
    public static func encode(_ model: BaselineModel) -> JSONValue {
        let window = model.snapshotWindow
        return .object([
            ("format", .string(format)),
            ("snapshot_id", .int(model.snapshotID)),
            ("window", .object([
                ("start", window.map { .string(Timestamp.formatHour($0.lowerBound)) } ?? .null),
                ("end", window.map { .string(Timestamp.formatHour($0.upperBound + 1)) } ?? .null),
                ("hours", .int(model.settings.windowHours)),
                ("samples", model.settings.windowSamples.map { .int($0) } ?? .null),
            ])),
            ("min_samples", .int(model.settings.minSamples)),
            ("segment_by", model.settings.segmentField.map { .string($0) } ?? .null),
            ("entries", .array(model.entries.map { e in
                .object([
                    ("metric", .string(e.metric)), ("segment", .string(e.segment)), ("n", .int(e.stats.n)),
                    ("mean", .number(e.stats.mean)), ("std", .number(e.stats.std)), ("p95", .number(e.stats.p95)),
                    ("p99", .number(e.stats.p99)), ("min", .number(e.stats.min)), ("max", .number(e.stats.max)),
                    ("ready", .bool(e.stats.ready)),
                ] + zip(robustKeys, robustValues(e.stats.robust)).map { ($0, .number($1)) })
            })),
        ])
    }

    /// The keys of ``RobustStats`` in a file (optional when reading: files written before them
    /// get the normal approximation).
    static let robustKeys = ["median", "mad", "mean_abs_dev", "p01", "p05", "p10", "p25", "p75", "p90", "p999"]

    static func robustValues(_ r: RobustStats) -> [Double] {
        [r.median, r.mad, r.meanAbsoluteDeviation, r.p01, r.p05, r.p10, r.p25, r.p75, r.p90, r.p999]
    }

    /// The file name for a snapshot: its window's last day, so files sort by time.
    public static func fileName(_ model: BaselineModel) -> String {
        "snapshot-\(model.snapshotWindow.map { Timestamp.formatDay(BaselineModel.day(ofHour: $0.upperBound)) } ?? "empty")-\(model.snapshotID).json"
    }

    /// A problem in a snapshot file, naming the file and the entry.
    public struct FileError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads and checks a snapshot file; every entry must name a known metric and hold sane numbers.
    public static func decode(_ data: Data, file: String, metrics: [MetricDefinition]) throws(FileError) -> [SnapshotEntry] {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FileError(description: "\(file): not a JSON object")
        }
        guard root["format"] as? String == format else {
            throw FileError(description: "\(file): format must be \"\(format)\" (found \(root["format"].map { "\($0)" } ?? "none"))")
        }
        guard let entries = root["entries"] as? [[String: Any]] else {
            throw FileError(description: "\(file): \"entries\" must be a list of objects")
        }
        let known = Set(metrics.map(\.name))
        var out: [SnapshotEntry] = []
        var seen = Set<String>()
        for (i, e) in entries.enumerated() {
            let metric = e["metric"] as? String ?? ""
            let segment = e["segment"] as? String ?? ""
            let at = "\(file): entries[\(i)] (\(metric)\(segment.isEmpty ? "" : "/" + segment))"
            guard known.contains(metric) else {
                throw FileError(description: "\(at): unknown metric; known: \(metrics.map(\.name).joined(separator: ", "))")
            }
            guard seen.insert(metric + "\u{1f}" + segment).inserted else { throw FileError(description: "\(at): listed twice") }
            func number(_ key: String) throws(FileError) -> Double {
                guard let x = (e[key] as? NSNumber)?.doubleValue, x.isFinite else { throw FileError(description: "\(at): \"\(key)\" must be a number") }
                return x
            }
            let n = try number("n"), mean = try number("mean"), std = try number("std")
            let p95 = try number("p95"), p99 = try number("p99"), lo = try number("min"), hi = try number("max")
            guard n >= 1, n == n.rounded(), n < 0x1p63 else { throw FileError(description: "\(at): n must be a whole number from 1 to 2^63 - 1") }
            guard std >= 0 else { throw FileError(description: "\(at): std must not be negative") }
            guard lo <= p95, p95 <= p99, p99 <= hi, lo <= mean, mean <= hi else {
                throw FileError(description: "\(at): needs min ≤ p95 ≤ p99 ≤ max and min ≤ mean ≤ max")
            }
            var robust: RobustStats? = nil
            let present = robustKeys.filter { e[$0] != nil }
            if !present.isEmpty {
                guard present.count == robustKeys.count else {
                    throw FileError(description: "\(at): has \(present.joined(separator: ", ")) but not \(robustKeys.filter { e[$0] == nil }.joined(separator: ", ")); give all of them or none")
                }
                var v: [Double] = []
                for k in robustKeys { v.append(try number(k)) }
                guard v[1] >= 0, v[2] >= 0 else { throw FileError(description: "\(at): mad and mean_abs_dev must not be negative") }
                let ordered = [lo, v[3], v[4], v[5], v[6], v[0], v[7], v[8], p95, p99, v[9], hi]
                guard zip(ordered, ordered.dropFirst()).allSatisfy({ $0 <= $1 }) else {
                    throw FileError(description: "\(at): needs min ≤ p01 ≤ p05 ≤ p10 ≤ p25 ≤ median ≤ p75 ≤ p90 ≤ p95 ≤ p99 ≤ p999 ≤ max")
                }
                robust = RobustStats(p01: v[3], p05: v[4], p10: v[5], p25: v[6], median: v[0], p75: v[7], p90: v[8], p999: v[9],
                                     mad: v[1], meanAbsoluteDeviation: v[2])
            }
            out.append(SnapshotEntry(metric: metric, segment: segment, stats: MetricStats(
                n: Int64(n), mean: mean, std: std, p95: p95, p99: p99, min: lo, max: hi, snapshotID: 0, ready: true, segment: segment,
                robust: robust)))
        }
        return out
    }
}
