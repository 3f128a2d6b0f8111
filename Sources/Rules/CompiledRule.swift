import Foundation
import IWDetectCore

/// A compiled expression: names resolved to slots, metrics to indexes, lists to sets.
indirect enum CompiledExpr: @unchecked Sendable {
    // @unchecked: NSRegularExpression is immutable after creation and documented thread-safe.
    case constant(FieldValue)
    case field(Int)
    /// The element count of a list-valued slot (`tool_call_count`).
    case listCount(Int)
    /// A derived metric (count, bytes) read from its slot.
    case derived(MetricDefinition, Int)
    case baseline(metric: Int, stat: BaselineStat)
    case zscore(metric: Int, value: CompiledExpr)
    /// `rz(metric)`: the robust z, `(value - median) / (1.4826 * MAD)`.
    case robustZ(metric: Int, value: CompiledExpr)
    /// The value of the rule's window function `i`, computed before the condition is evaluated.
    case window(Int)
    case negate(CompiledExpr)
    case absolute(CompiledExpr)
    case arith(ArithOp, CompiledExpr, CompiledExpr)
    case compare(CompareOp, CompiledExpr, CompiledExpr)
    case and([CompiledExpr])
    case or([CompiledExpr])
    case not(CompiledExpr)
    case member(CompiledExpr, Set<FieldValue>, negated: Bool)
    case contains(CompiledExpr, [String])
    case matches(CompiledExpr, NSRegularExpression)
}

enum ArithOp: String, Sendable { case add = "+", sub = "-", mul = "*", div = "/" }
enum CompareOp: String, Sendable { case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=" }

/// The statistics a condition can read from a baseline.
public enum BaselineStat: String, Sendable, CaseIterable {
    case mean, std, p95, p99, min, max, n
    case median, mad, p01, p05, p10, p25, p50, p75, p90, p999

    /// The stat's place in a row of ``numbers(_:into:at:)``.
    var column: Int {
        switch self {
        case .mean: return 0
        case .std: return 1
        case .p95: return 2
        case .p99: return 3
        case .min: return 4
        case .max: return 5
        case .n: return 6
        case .median, .p50: return 7
        case .mad: return 8
        case .p01: return 9
        case .p05: return 10
        case .p10: return 11
        case .p25: return 12
        case .p75: return 13
        case .p90: return 14
        case .p999: return 15
        }
    }

    /// Columns of a row: every stat, then the robust scale and readiness (1 or 0).
    static let scaleColumn = 16, readyColumn = 17, width = 18

    /// Writes a metric's row of plain numbers (no reference counting when read back).
    static func numbers(_ s: MetricStats, into row: inout [Double], at base: Int) {
        row[base] = s.mean; row[base + 1] = s.std; row[base + 2] = s.p95; row[base + 3] = s.p99
        row[base + 4] = s.min; row[base + 5] = s.max; row[base + 6] = Double(s.n)
        let r = s.robust
        row[base + 7] = r.median; row[base + 8] = r.mad; row[base + 9] = r.p01; row[base + 10] = r.p05; row[base + 11] = r.p10
        row[base + 12] = r.p25; row[base + 13] = r.p75; row[base + 14] = r.p90; row[base + 15] = r.p999
        row[base + scaleColumn] = r.scale
        row[base + readyColumn] = s.ready ? 1 : 0
    }

    func read(_ s: MetricStats) -> Double {
        switch self {
        case .mean: return s.mean
        case .std: return s.std
        case .p95: return s.p95
        case .p99: return s.p99
        case .min: return s.min
        case .max: return s.max
        case .n: return Double(s.n)
        case .median, .p50: return s.robust.median
        case .mad: return s.robust.mad
        case .p01: return s.robust.p01
        case .p05: return s.robust.p05
        case .p10: return s.robust.p10
        case .p25: return s.robust.p25
        case .p75: return s.robust.p75
        case .p90: return s.robust.p90
        case .p999: return s.robust.p999
        }
    }
}

/// A window function of a rule (DESIGN §5), evaluated per key in event time.
struct WindowSpec: Sendable {
    enum Kind: Sendable {
        /// `count(key, window)`: events in the window for which the rule's event-level part holds.
        case count
        /// `rolling_mean(metric, window[, key])`: mean of the metric over those events.
        case rollingMean(metric: MetricDefinition, slot: Int)
        /// `sum(metric, window[, key])`: sum of the metric over those events.
        case sum(metric: MetricDefinition, slot: Int)
        /// `max(metric, window[, key])`: largest value of the metric over those events.
        case max(metric: MetricDefinition, slot: Int)
        /// `count_distinct(field, key, window)`: distinct values of the field among those events.
        case countDistinct(slot: Int)
        /// `rolling_std(metric, window[, key])`: population standard deviation over those events.
        case rollingStd(metric: MetricDefinition, slot: Int)
        /// `ewma(metric, halflife[, key])`: the mean weighted by `2^(-age / halflife)`, over the
        /// events of the last 8 half-lives (the spec's window).
        case ewma(metric: MetricDefinition, slot: Int, halflife: Int64)
        /// `cusum(metric, k, window[, key])` (and `cusum_down`): Page's CUSUM of the events' robust
        /// z (each taken when the event arrived) minus `k`, restarted at the window's start.
        case cusum(metric: MetricDefinition, slot: Int, index: Int, k: Double, down: Bool)

        /// The metric whose value each counted event contributes, if any.
        var metric: (MetricDefinition, Int)? {
            switch self {
            case .rollingMean(let m, let s), .sum(let m, let s), .max(let m, let s), .rollingStd(let m, let s): return (m, s)
            case .ewma(let m, let s, _), .cusum(let m, let s, _, _, _): return (m, s)
            case .count, .countDistinct: return nil
            }
        }

        /// Whether entries keep their raw values (for max, rolling_std, ewma and cusum) or distinct labels.
        var keepsValues: Bool {
            switch self {
            case .max, .rollingStd, .ewma, .cusum: return true
            case .count, .rollingMean, .sum, .countDistinct: return false
            }
        }
        var keepsLabels: Bool { if case .countDistinct = self { return true }; return false }
    }

    var kind: Kind
    /// The slot of the key field; nil for a global window (one series for all events).
    var keySlot: Int?
    var keyName: String
    var window: Int64
    /// Canonical text, e.g. `count(session_id, 5m)`: labels evidence and persisted state.
    var signature: String
}

/// A rule ready to evaluate.
///
/// A final class with constant members: the evaluator reads it per event, and a struct with
/// this many reference-counted members was measured copying (a retain per member) on every read.
public final class CompiledRule: Sendable {
    public let info: RuleInfo
    /// Where the rule was defined, for messages.
    public let file: String
    let condition: CompiledExpr
    /// The rule's event-level conjuncts (the top-level AND parts without window functions): what an
    /// event must satisfy to be counted by the rule's windows.
    let filter: CompiledExpr?
    /// Whether the condition is a conjunction that contains the filter, so an event failing the
    /// filter can skip window work entirely.
    let filterGates: Bool
    let windows: [WindowSpec]
    /// Fields to report as evidence: (name as written, slot, the derived metric meant, if any).
    let evidenceFields: [(String, Int, MetricDefinition?)]
    /// Metrics whose baselines the condition reads: (index, name, slot of its value).
    let evidenceMetrics: [(Int, MetricDefinition, Int)]
    let dedupSlots: [Int]

    init(info: RuleInfo, file: String, condition: CompiledExpr, filter: CompiledExpr?, filterGates: Bool,
         windows: [WindowSpec], evidenceFields: [(String, Int, MetricDefinition?)], evidenceMetrics: [(Int, MetricDefinition, Int)],
         dedupSlots: [Int]) {
        self.info = info
        self.file = file
        self.condition = condition
        self.filter = filter
        self.filterGates = filterGates
        self.windows = windows
        self.evidenceFields = evidenceFields
        self.evidenceMetrics = evidenceMetrics
        self.dedupSlots = dedupSlots
    }
}
