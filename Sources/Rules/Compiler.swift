import Foundation
import IWDetectCore

/// The monitoring guide's names for fields of the log schema, and `signature_ids` for the ids of
/// InferenceWall's matches.
public let fieldAliases: [String: String] = [
    "injection_score": "input_injection_score",
    "output": "model_output",
    "input": "user_input",
    "tool_name": "tool_calls.name",
    "latency_ms": "inference_latency_ms",
    "input_token_count": "input_tokens",
    "output_token_count": "output_tokens",
    "signature_ids": "matches.signature_id",
]

/// Resolves a parsed condition against the field table, the metrics and the named lists.
struct Compiler {
    var fields: FieldTable
    let metrics: [MetricDefinition]
    let lists: [String: [FieldValue]]
    var windows: [WindowSpec] = []
    var evidenceFields: [(String, Int, MetricDefinition?)] = []
    var evidenceMetrics: [(Int, MetricDefinition, Int)] = []
    /// Every field name the condition reads, with its offset in the condition (for unknown-field
    /// warnings).
    var referencedFields: [(name: String, offset: Int)] = []
    /// The fields whose values must be scalars: window keys and `count_distinct`'s field.
    var keyFields: [(name: String, offset: Int)] = []
    /// Whether the condition reads a baseline.
    var readsBaseline = false

    init(fields: FieldTable, metrics: [MetricDefinition], lists: [String: [FieldValue]]) {
        self.fields = fields
        self.metrics = metrics
        self.lists = lists
    }

    /// A field name resolved through aliases to a path.
    func canonical(_ name: String) -> String { fieldAliases[name] ?? name }

    /// The metric a name denotes, if any: a metric's own name or its field's path.
    func metricIndex(named name: String) -> Int? {
        let path = canonical(name)
        return metrics.firstIndex { $0.name == name || $0.name == path || ($0.kind == .value && $0.path == path) }
    }

    mutating func noteField(_ name: String, _ slot: Int, derived: MetricDefinition? = nil) {
        if !evidenceFields.contains(where: { $0.1 == slot && $0.2 == derived }) { evidenceFields.append((name, slot, derived)) }
    }

    mutating func noteMetric(_ m: Int) {
        if !evidenceMetrics.contains(where: { $0.0 == m }) {
            evidenceMetrics.append((m, metrics[m], fields.slot(for: metrics[m].path)))
        }
    }

    /// The metric a side of a comparison measures, for a bare `baseline.<stat>` on the other side.
    func impliedMetric(_ e: Expr) -> Int? {
        switch e {
        case .name(let n, _): return metricIndex(named: n)
        case .call(let f, let args, _) where ["rolling_mean", "max", "rolling_std", "ewma"].contains(f.lowercased()) && !args.isEmpty:
            if case .name(let n, _) = args[0] { return metricIndex(named: n) }
            return nil
        case .binary(let op, let a, let b, _) where ["+", "-", "*", "/"].contains(op):
            return impliedMetric(a) ?? impliedMetric(b)
        case .unary("-", let a, _): return impliedMetric(a)
        default: return nil
        }
    }

    static let windowFunctions: Set<String> = ["count", "rolling_mean", "sum", "max", "count_distinct", "rolling_std", "ewma", "cusum", "cusum_down"]

    static func containsWindow(_ e: Expr) -> Bool {
        switch e {
        case .call(let f, let args, _):
            return windowFunctions.contains(f.lowercased()) || args.contains(where: containsWindow)
        case .unary(_, let a, _): return containsWindow(a)
        case .binary(_, let a, let b, _): return containsWindow(a) || containsWindow(b)
        case .list(let items, _): return items.contains(where: containsWindow)
        default: return false
        }
    }

    mutating func compile(_ e: Expr, metric implied: Int? = nil) throws(ConditionError) -> CompiledExpr {
        switch e {
        case .number(let n, _): return .constant(.number(n))
        case .duration(let d, let at):
            throw ConditionError(code: "bad_argument", message: "a duration (\(EventTime.Duration(micros: d))) is only valid as a window argument", offset: at)
        case .string(let s, _): return .constant(.string(s))
        case .bool(let b, _): return .constant(.bool(b))
        case .null: return .constant(.null)
        case .list(let items, _): return .constant(.list(try items.map { (item) throws(ConditionError) in try literal(item) }))
        case .name(let n, let at):
            referencedFields.append((n, at))
            if let m = metricIndex(named: n), metrics[m].kind != .value {
                let slot = fields.slot(for: metrics[m].path)
                noteField(n, slot, derived: metrics[m])
                return metrics[m].kind == .count ? .listCount(slot) : .derived(metrics[m], slot)
            }
            let slot = fields.slot(for: canonical(n))
            noteField(n, slot)
            return .field(slot)
        case .baseline(let metricExpr, let statName, let at):
            guard let stat = BaselineStat(rawValue: statName.lowercased()) else {
                throw ConditionError(code: "unknown_stat", message: "baseline has no '\(statName)'; use one of \(BaselineStat.allCases.map(\.rawValue).joined(separator: ", "))", offset: at)
            }
            let m: Int
            if let metricExpr {
                guard case .name(let n, let nat) = metricExpr, let found = metricIndex(named: n) else {
                    throw ConditionError(code: "unknown_metric", message: "baseline(...) needs a metric: one of \(metrics.map(\.name).joined(separator: ", "))", offset: metricExpr.offset)
                }
                _ = nat
                m = found
            } else {
                guard let implied else {
                    throw ConditionError(code: "baseline_without_metric", message: "a bare baseline.\(statName) needs a metric on the other side of its comparison; write baseline(metric).\(statName)", offset: at)
                }
                m = implied
            }
            noteMetric(m)
            readsBaseline = true
            return .baseline(metric: m, stat: stat)
        case .call(let name, let args, let at):
            return try call(name.lowercased(), args, at: at)
        case .unary("-", let a, _): return .negate(try compile(a, metric: implied))
        case .unary(_, let a, _): return .not(try compile(a))
        case .binary(let op, let a, let b, let at):
            switch op {
            case "and":
                let l = try compile(a), r = try compile(b)
                if case .and(let xs) = l { return .and(xs + [r]) }
                return .and([l, r])
            case "or":
                let l = try compile(a), r = try compile(b)
                if case .or(let xs) = l { return .or(xs + [r]) }
                return .or([l, r])
            case "+", "-", "*", "/":
                return .arith(ArithOp(rawValue: op)!, try compile(a, metric: implied), try compile(b, metric: implied))
            case "==", "!=", "<", "<=", ">", ">=":
                let l = try compile(a, metric: impliedMetric(b))
                let r = try compile(b, metric: impliedMetric(a))
                return .compare(CompareOp(rawValue: op)!, l, r)
            case "in", "not in":
                return .member(try compile(a), Set(try listOperand(b, op: op)), negated: op == "not in")
            case "contains":
                let items = try listOperand(b, op: op)
                let strings = items.compactMap(\.string)
                guard strings.count == items.count else {
                    throw ConditionError(code: "bad_argument", message: "contains needs a string or a list of strings", offset: b.offset)
                }
                return .contains(try compile(a), strings)
            case "matches":
                guard case .string(let pattern, let pat) = b else {
                    throw ConditionError(code: "bad_argument", message: "matches needs a regular expression in quotes", offset: b.offset)
                }
                guard let re = try? NSRegularExpression(pattern: pattern) else {
                    throw ConditionError(code: "bad_regex", message: "'\(pattern)' is not a valid regular expression", offset: pat)
                }
                return .matches(try compile(a), re)
            default:
                throw ConditionError(code: "syntax_error", message: "unknown operator \(op)", offset: at)
            }
        }
    }

    func literal(_ e: Expr) throws(ConditionError) -> FieldValue {
        switch e {
        case .number(let n, _): return .number(n)
        case .string(let s, _): return .string(s)
        case .bool(let b, _): return .bool(b)
        case .null: return .null
        case .unary("-", .number(let n, _), _): return .number(-n)
        default: throw ConditionError(code: "bad_argument", message: "list items must be literals", offset: e.offset)
        }
    }

    /// The right side of `in`, `not in`, `contains`: a literal, a list literal, or a named list.
    func listOperand(_ e: Expr, op: String) throws(ConditionError) -> [FieldValue] {
        switch e {
        case .list(let items, _): return try items.map { (item) throws(ConditionError) in try literal(item) }
        case .name(let n, let at):
            guard let items = lists[n] else {
                throw ConditionError(code: "undefined_list", message: "'\(n)' is not a defined list (define it with `- list: \(n)` under rules/lists/)", offset: at)
            }
            return items
        case .string, .number, .bool:
            guard op == "contains" else {
                throw ConditionError(code: "bad_argument", message: "'\(op)' needs a list on its right, e.g. [\"a\", \"b\"] or a named list", offset: e.offset)
            }
            return [try literal(e)]
        default:
            throw ConditionError(code: "bad_argument", message: "'\(op)' needs a list on its right, e.g. [\"a\", \"b\"] or a named list", offset: e.offset)
        }
    }

    mutating func call(_ name: String, _ args: [Expr], at: Int) throws(ConditionError) -> CompiledExpr {
        switch name {
        case "count":
            guard args.count == 2 else {
                throw ConditionError(code: "bad_arity", message: "count(key, window) takes 2 arguments, got \(args.count)", offset: at)
            }
            let (slot, keyName) = try keyArgument(args[0])
            let window = try durationArgument(args[1])
            return addWindow(WindowSpec(kind: .count, keySlot: slot, keyName: keyName, window: window,
                                        signature: "count(\(keyName), \(EventTime.Duration(micros: window)))"))
        case "rolling_mean", "sum", "max":
            guard args.count == 2 || args.count == 3 else {
                throw ConditionError(code: "bad_arity", message: "\(name)(metric, window[, key]) takes 2 or 3 arguments, got \(args.count)", offset: at)
            }
            guard case .name(let mname, _) = args[0], let m = metricIndex(named: mname) else {
                throw ConditionError(code: "unknown_metric", message: "\(name) needs a metric: one of \(metrics.map(\.name).joined(separator: ", "))", offset: args[0].offset)
            }
            let window = try durationArgument(args[1])
            var keySlot: Int? = nil
            var keyName = ""
            if args.count == 3 { (keySlot, keyName) = try keyArgument(args[2]) }
            let slot = fields.slot(for: metrics[m].path)
            noteMetric(m)
            let kind: WindowSpec.Kind = name == "sum" ? .sum(metric: metrics[m], slot: slot)
                : name == "max" ? .max(metric: metrics[m], slot: slot) : .rollingMean(metric: metrics[m], slot: slot)
            let sig = "\(name)(\(mname), \(EventTime.Duration(micros: window))" + (keySlot == nil ? ")" : ", \(keyName))")
            return addWindow(WindowSpec(kind: kind, keySlot: keySlot, keyName: keyName, window: window, signature: sig))
        case "rolling_std", "ewma":
            guard args.count == 2 || args.count == 3 else {
                let second = name == "ewma" ? "halflife" : "window"
                throw ConditionError(code: "bad_arity", message: "\(name)(metric, \(second)[, key]) takes 2 or 3 arguments, got \(args.count)", offset: at)
            }
            guard case .name(let mname, _) = args[0], let m = metricIndex(named: mname) else {
                throw ConditionError(code: "unknown_metric", message: "\(name) needs a metric: one of \(metrics.map(\.name).joined(separator: ", "))", offset: args[0].offset)
            }
            let span = try durationArgument(args[1])
            var window = span
            if name == "ewma" {
                // The events of the last 8 half-lives: older ones weigh under 0.4 % together.
                guard span <= EventTime.Duration.days(31).micros / 8 else {
                    throw ConditionError(code: "window_too_large", message: "an ewma half-life longer than 3d21h is not supported (8 half-lives are kept)", offset: args[1].offset)
                }
                window = span * 8
            }
            var keySlot: Int? = nil
            var keyName = ""
            if args.count == 3 { (keySlot, keyName) = try keyArgument(args[2]) }
            let slot = fields.slot(for: metrics[m].path)
            noteMetric(m)
            let kind: WindowSpec.Kind = name == "ewma" ? .ewma(metric: metrics[m], slot: slot, halflife: span) : .rollingStd(metric: metrics[m], slot: slot)
            let sig = "\(name)(\(mname), \(EventTime.Duration(micros: span))" + (keySlot == nil ? ")" : ", \(keyName))")
            return addWindow(WindowSpec(kind: kind, keySlot: keySlot, keyName: keyName, window: window, signature: sig))
        case "cusum", "cusum_down":
            guard args.count == 3 || args.count == 4 else {
                throw ConditionError(code: "bad_arity", message: "\(name)(metric, k, window[, key]) takes 3 or 4 arguments, got \(args.count)", offset: at)
            }
            let m = try metricArgument(args[0], of: name)
            guard case .number(let k, let kat) = args[1] else {
                throw ConditionError(code: "bad_argument", message: "\(name) needs the allowance k second, in robust standard deviations, e.g. \(name)(risk_score, 0.5, 6h)", offset: args[1].offset)
            }
            guard k >= 0 else { throw ConditionError(code: "bad_argument", message: "\(name)'s k must not be negative", offset: kat) }
            let window = try durationArgument(args[2])
            var keySlot: Int? = nil
            var keyName = ""
            if args.count == 4 { (keySlot, keyName) = try keyArgument(args[3]) }
            let slot = fields.slot(for: metrics[m].path)
            let sig = "\(name)(\(args[0].nameText ?? ""), \(JSONValue.format(k)), \(EventTime.Duration(micros: window))" + (keySlot == nil ? ")" : ", \(keyName))")
            return addWindow(WindowSpec(kind: .cusum(metric: metrics[m], slot: slot, index: m, k: k, down: name == "cusum_down"),
                                        keySlot: keySlot, keyName: keyName, window: window, signature: sig))
        case "count_distinct":
            guard args.count == 3 else {
                throw ConditionError(code: "bad_arity", message: "count_distinct(field, key, window) takes 3 arguments, got \(args.count)", offset: at)
            }
            guard case .name(let fname, let fat) = args[0] else {
                throw ConditionError(code: "bad_argument", message: "count_distinct needs a field name first, e.g. count_distinct(source_ip, user_id, 1h)", offset: args[0].offset)
            }
            referencedFields.append((fname, fat))
            keyFields.append((fname, fat))
            let fieldSlot = fields.slot(for: canonical(fname))
            let (keySlot, keyName) = try keyArgument(args[1])
            let window = try durationArgument(args[2])
            return addWindow(WindowSpec(kind: .countDistinct(slot: fieldSlot), keySlot: keySlot, keyName: keyName, window: window,
                                        signature: "count_distinct(\(fname), \(keyName), \(EventTime.Duration(micros: window)))"))
        case "abs":
            guard args.count == 1 else {
                throw ConditionError(code: "bad_arity", message: "abs(x) takes 1 argument, got \(args.count)", offset: at)
            }
            return .absolute(try compile(args[0]))
        case "z", "rz":
            guard args.count == 1 else {
                throw ConditionError(code: "bad_arity", message: "\(name)(metric) takes 1 argument, got \(args.count)", offset: at)
            }
            let m = try metricArgument(args[0], of: name)
            let value = try compile(args[0])
            return name == "z" ? .zscore(metric: m, value: value) : .robustZ(metric: m, value: value)
        case "above", "below", "outside":
            // Two-sided helpers over the robust z: above(m, k) is rz(m) > k, below(m, k) is
            // rz(m) < -k, outside(m, k) is abs(rz(m)) > k.
            guard args.count == 2 else {
                throw ConditionError(code: "bad_arity", message: "\(name)(metric, k) takes 2 arguments, got \(args.count)", offset: at)
            }
            let m = try metricArgument(args[0], of: name)
            guard case .number(let k, let kat) = args[1] else {
                throw ConditionError(code: "bad_argument", message: "\(name) needs a number of robust standard deviations second, e.g. \(name)(output_tokens, 4)", offset: args[1].offset)
            }
            guard k >= 0 else { throw ConditionError(code: "bad_argument", message: "\(name)'s k must not be negative", offset: kat) }
            let rz = CompiledExpr.robustZ(metric: m, value: try compile(args[0]))
            switch name {
            case "above": return .compare(.gt, rz, .constant(.number(k)))
            case "below": return .compare(.lt, rz, .constant(.number(-k)))
            default: return .compare(.gt, .absolute(rz), .constant(.number(k)))
            }
        default:
            throw ConditionError(code: "unknown_function", message: "unknown function '\(name)'; known: count, count_distinct, rolling_mean, rolling_std, ewma, cusum, cusum_down, sum, max, z, rz, above, below, outside, abs, baseline", offset: at)
        }
    }

    /// The metric named by a baselined function's first argument, noted as evidence.
    mutating func metricArgument(_ e: Expr, of function: String) throws(ConditionError) -> Int {
        guard case .name(let mname, _) = e, let m = metricIndex(named: mname) else {
            throw ConditionError(code: "unknown_metric", message: "\(function) needs a metric: one of \(metrics.map(\.name).joined(separator: ", "))", offset: e.offset)
        }
        noteMetric(m)
        readsBaseline = true
        return m
    }

    mutating func keyArgument(_ e: Expr) throws(ConditionError) -> (Int, String) {
        guard case .name(let n, let at) = e else {
            throw ConditionError(code: "bad_argument", message: "the key must be a field name, e.g. session_id", offset: e.offset)
        }
        referencedFields.append((n, at))
        keyFields.append((n, at))
        return (fields.slot(for: canonical(n)), n)
    }

    func durationArgument(_ e: Expr) throws(ConditionError) -> Int64 {
        guard case .duration(let d, let at) = e else {
            throw ConditionError(code: "bad_argument", message: "the window must be a duration such as 5m or 1h", offset: e.offset)
        }
        guard d > 0 else { throw ConditionError(code: "bad_duration", message: "the window must be longer than zero", offset: at) }
        guard d <= EventTime.Duration.days(31).micros else {
            throw ConditionError(code: "window_too_large", message: "windows longer than 31 days are not supported", offset: at)
        }
        return d
    }

    mutating func addWindow(_ spec: WindowSpec) -> CompiledExpr {
        if let i = windows.firstIndex(where: { $0.signature == spec.signature }) { return .window(i) }
        windows.append(spec)
        return .window(windows.count - 1)
    }
}
