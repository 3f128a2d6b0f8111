import Baseline
import Foundation
import IWDetectCore

/// Baseline snapshot import (`baseline import`): ``SnapshotFile/decode(_:file:metrics:)`` with the
/// default metrics. Checked: every accepted entry is one the decoder promises (a known metric,
/// finite numbers, min ≤ p95 ≤ p99 ≤ max, min ≤ mean ≤ max, n ≥ 1).
public func fuzzSnapshot(_ data: UnsafeRawBufferPointer) {
    let known = Set(MetricDefinition.defaults.map(\.name))
    let entries: [SnapshotEntry]
    do {
        entries = try SnapshotFile.decode(Data(data), file: "fuzz.json", metrics: MetricDefinition.defaults)
    } catch {
        _ = error.description
        return
    }
    for e in entries {
        let s = e.stats
        fuzzCheck(known.contains(e.metric), "accepted an entry of unknown metric \(e.metric)")
        fuzzCheck(s.n >= 1 && s.std >= 0 && s.min <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.max && s.min <= s.mean && s.mean <= s.max,
                  "accepted an entry with inconsistent numbers: \(s)")
    }
}
