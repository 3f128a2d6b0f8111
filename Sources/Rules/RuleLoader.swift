import Foundation
import IWDetectCore
import YAMLSupport
import Yams

/// Reads rule files (YAML) into a compiled ``RuleSet``, collecting every problem with its file,
/// line, column and code rather than stopping at the first (Falco's loader, alertmanager's
/// joined errors).
///
/// A file holds one rule (a mapping), or a list of items; an item with a `list:` key defines a
/// named list (`- list: approved_tools` / `items: [...]`), any other item is a rule.
public enum RuleLoader {
    public static let actions: Set<String> = [
        "alert", "alert_and_rate_limit", "alert_and_block_session", "alert_and_block_user", "alert_and_notify_ml_team",
    ]
    static let ruleKeys: Set<String> = [
        "name", "description", "severity", "condition", "action", "dedup", "recommended_action", "tags", "enabled",
        "status", "channels", "tests",
    ]
    static let statuses: Set<String> = ["experimental", "test", "stable", "deprecated"]

    /// Loads every `.yaml`/`.yml` file under `paths` (directories are searched recursively, in
    /// sorted order); the path ``BundledRuleFiles/path`` stands for the rules built into the binary.
    /// - Parameter extraFields: field names the config declares (`fields:`), besides the schemas'
    ///   and the metrics', that rules may use without an `unknown_field` warning.
    public static func load(paths: [String], metrics: [MetricDefinition], fields: FieldTable, extraFields: [String] = []) -> RuleLoadResult {
        var files: [String] = []
        var diagnostics: [Diagnostic] = []
        var sources: [(String, String)] = []
        for path in paths {
            if path == BundledRuleFiles.path {
                sources += BundledRuleFiles.sources
                continue
            }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                diagnostics.append(Diagnostic("missing_path", .error,
                                              "no such file or directory; name rule files or folders with --rules PATH or IW_DETECT_RULES, or use the rules built into iw-detect (\(BundledRuleFiles.path))",
                                              file: path, line: 0, column: 0))
                continue
            }
            if isDir.boolValue {
                let found = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [])
                    .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
                    .sorted()
                    .map { (path as NSString).appendingPathComponent($0) }
                files += found
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                diagnostics.append(Diagnostic("unreadable_file", .error, "cannot read the file as UTF-8 text", file: file, line: 0, column: 0))
                continue
            }
            sources.append((file, text))
        }
        var result = load(sources: sources, metrics: metrics, fields: fields, extraFields: extraFields)
        result.diagnostics = diagnostics + result.diagnostics
        if !diagnostics.filter({ $0.level == .error }).isEmpty { result.ruleSet = nil }
        return result
    }

    /// Loads rules from in-memory sources: (file name, YAML text).
    public static func load(sources: [(String, String)], metrics: [MetricDefinition], fields: FieldTable,
                            extraFields: [String] = []) -> RuleLoadResult {
        let known = KnownFields(extra: extraFields + metrics.flatMap { [$0.name, $0.path] })
        var diagnostics: [Diagnostic] = []
        var ruleNodes: [(String, Node.Mapping)] = []
        var lists: [String: [FieldValue]] = [:]
        var listOrigins: [String: String] = [:]

        for (file, text) in sources {
            let root: Node?
            do {
                root = try Yams.compose(yaml: text)
            } catch {
                diagnostics.append(.yaml(error, file: file))
                continue
            }
            guard let root else { continue }  // an empty file
            let items: [Node]
            switch root {
            case .sequence(let seq): items = Array(seq)
            case .mapping: items = [root]
            default:
                diagnostics.append(at(root, file, "bad_file", "a rule file holds a rule (a mapping) or a list of rules and lists"))
                continue
            }
            for item in items {
                guard case .mapping(let map) = item else {
                    diagnostics.append(at(item, file, "bad_item", "each item must be a mapping: a rule, or `- list: NAME` with `items:`"))
                    continue
                }
                if let listName = map["list"] {
                    guard let name = listName.string, !name.isEmpty else {
                        diagnostics.append(at(listName, file, "bad_list", "a list needs a name"))
                        continue
                    }
                    if let prev = listOrigins[name] {
                        diagnostics.append(at(listName, file, "duplicate_list", "list '\(name)' is already defined in \(prev)"))
                        continue
                    }
                    for (k, _) in map where k.string != "list" && k.string != "items" {
                        diagnostics.append(at(k, file, "unknown_key", "unknown key '\(k.string ?? "?")' in list '\(name)'", .warning))
                    }
                    guard let itemsNode = map["items"], case .sequence(let seq) = itemsNode else {
                        diagnostics.append(at(listName, file, "bad_list", "list '\(name)' needs `items:` with a sequence of values"))
                        continue
                    }
                    lists[name] = seq.map(listValue)
                    listOrigins[name] = file
                } else {
                    ruleNodes.append((file, map))
                }
            }
        }

        var table = fields
        var rules: [CompiledRule] = []
        var tests: [RuleTestCase] = []
        var disabled: [CompiledRule] = []
        var seen: [String: String] = [:]
        for (file, map) in ruleNodes {
            var ruleDiagnostics: [Diagnostic] = []
            if let rule = compileRule(map, file: file, metrics: metrics, lists: lists, known: known, fields: &table, diagnostics: &ruleDiagnostics) {
                if let prev = seen[rule.info.name] {
                    ruleDiagnostics.append(at(map["name"]!, file, "duplicate_rule", "rule '\(rule.info.name)' is already defined in \(prev)"))
                } else if ruleDiagnostics.allSatisfy({ $0.level == .warning }) {
                    seen[rule.info.name] = file
                    if map["enabled"]?.bool == false { disabled.append(rule) } else { rules.append(rule) }
                    if let t = map["tests"] {
                        tests += RuleTestCase.parse(t, rule: rule.info.name, file: file, diagnostics: &ruleDiagnostics)
                    }
                }
            }
            diagnostics += ruleDiagnostics
        }
        let ok = diagnostics.allSatisfy { $0.level == .warning }
        return RuleLoadResult(ruleSet: ok ? RuleSet(rules: rules, lists: lists, disabledRules: disabled) : nil,
                              diagnostics: diagnostics, fields: table, tests: tests)
    }

    static func listValue(_ node: Node) -> FieldValue {
        if case .scalar(let s) = node, s.style == .plain, let n = Double(s.string) { return .number(n) }
        return .string(node.string ?? "")
    }

    static func at(_ node: Node, _ file: String, _ code: String, _ message: String, _ level: Diagnostic.Level = .error) -> Diagnostic {
        Diagnostic(code, level, message, file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0)
    }

    static func compileRule(_ map: Node.Mapping, file: String, metrics: [MetricDefinition], lists: [String: [FieldValue]],
                            known: KnownFields, fields: inout FieldTable, diagnostics: inout [Diagnostic]) -> CompiledRule? {
        let anchor = Node.mapping(map)
        for (k, _) in map where !ruleKeys.contains(k.string ?? "") {
            diagnostics.append(at(k, file, "unknown_key", "unknown key '\(k.string ?? "?")'; rule keys are \(ruleKeys.sorted().joined(separator: ", "))", .warning))
        }
        func string(_ key: String, required: Bool) -> String? {
            guard let node = map[key] else {
                if required { diagnostics.append(at(anchor, file, "missing_key", "a rule needs '\(key)'")) }
                return nil
            }
            guard case .scalar(let s) = node else {
                diagnostics.append(at(node, file, "bad_value", "'\(key)' must be text"))
                return nil
            }
            return s.string
        }
        let name = string("name", required: true) ?? ""
        let description = string("description", required: false) ?? ""
        let recommended = string("recommended_action", required: false) ?? "Review alert details."
        var severity = Severity.low
        if let s = string("severity", required: true) {
            if let sev = Severity(rawValue: s.lowercased()) { severity = sev } else {
                diagnostics.append(at(map["severity"]!, file, "bad_severity", "severity '\(s)' is not one of low, medium, high, critical"))
            }
        }
        let action = string("action", required: false) ?? "alert"
        if !actions.contains(action) {
            diagnostics.append(at(map["action"]!, file, "bad_action", "action '\(action)' is not one of \(actions.sorted().joined(separator: ", "))"))
        }
        if let status = string("status", required: false), !statuses.contains(status) {
            diagnostics.append(at(map["status"]!, file, "bad_status", "status '\(status)' is not one of \(statuses.sorted().joined(separator: ", "))"))
        }
        if let enabled = map["enabled"], enabled.bool == nil {
            diagnostics.append(at(enabled, file, "bad_value", "'enabled' must be true or false"))
        }
        let tags = stringList(map["tags"], "tags", file, &diagnostics) ?? []
        let channels = stringList(map["channels"], "channels", file, &diagnostics)

        var dedupKey: [String]? = nil
        var dedupWindow = EventTime.Duration.minutes(15)
        var episode = false
        if let dedup = map["dedup"] {
            if case .mapping(let d) = dedup {
                for (k, _) in d where !["key", "window", "mode", "quiet"].contains(k.string ?? "") {
                    diagnostics.append(at(k, file, "unknown_key", "unknown key '\(k.string ?? "?")' in dedup; use key, window, mode and quiet", .warning))
                }
                if let m = d["mode"] {
                    switch m.string {
                    case "window": break
                    case "episode": episode = true; dedupWindow = .minutes(30)
                    default: diagnostics.append(at(m, file, "bad_value", "dedup mode must be window or episode"))
                    }
                }
                if let w = d[episode ? "window" : "quiet"] {
                    diagnostics.append(at(w, file, "bad_value", episode ? "an episode has no window: it lasts while detections come closer than quiet; use quiet"
                                                                         : "quiet is for mode: episode; a window dedup uses window"))
                }
                if let q = d["quiet"], episode {
                    if let s = q.string, let dur = EventTime.Duration(parsing: s), dur.micros > 0 { dedupWindow = dur } else {
                        diagnostics.append(at(q, file, "bad_duration", "dedup quiet must be a duration such as 30m or 1h"))
                    }
                }
                if let k = d["key"] {
                    if case .scalar(let s) = k { dedupKey = s.string.isEmpty ? [] : [s.string] } else {
                        dedupKey = stringList(k, "dedup.key", file, &diagnostics)
                    }
                }
                if let w = d["window"], !episode {
                    if let s = w.string, let dur = EventTime.Duration(parsing: s), dur.micros > 0 { dedupWindow = dur } else {
                        diagnostics.append(at(w, file, "bad_duration", "dedup window must be a duration such as 15m or 1h"))
                    }
                }
            } else {
                diagnostics.append(at(dedup, file, "bad_value", "dedup must be a mapping: { key: [user_id], window: 15m } or { key: [user_id], mode: episode, quiet: 30m }"))
            }
        }

        guard let condition = string("condition", required: true), let conditionNode = map["condition"] else { return nil }
        var compiler = Compiler(fields: fields, metrics: metrics, lists: lists)
        let node: CompiledExpr
        let filter: CompiledExpr?
        let filterGates: Bool
        do {
            let expr = try Parser.parse(condition)
            node = try compiler.compile(expr)
            // The event-level part: top-level conjuncts without window functions.
            var conjuncts: [Expr] = []
            func flatten(_ e: Expr) {
                if case .binary("and", let a, let b, _) = e { flatten(a); flatten(b) } else { conjuncts.append(e) }
            }
            flatten(expr)
            let eventLevel = conjuncts.filter { !Compiler.containsWindow($0) }
            if eventLevel.isEmpty || compiler.windows.isEmpty {
                filter = nil
                filterGates = false
            } else {
                var fc = Compiler(fields: compiler.fields, metrics: metrics, lists: lists)
                let parts = try eventLevel.map { (e) throws(ConditionError) in try fc.compile(e) }
                filter = parts.count == 1 ? parts[0] : .and(parts)
                filterGates = true
            }
        } catch {
            let (line, column) = position(of: error.offset, in: conditionNode, text: condition)
            diagnostics.append(Diagnostic(error.code, .error, error.message, file: file, line: line, column: column))
            return nil
        }
        // Without an explicit key, the key follows from the condition: the key of its (first keyed)
        // window function; none for a global aggregate (one alert for the whole stream, not one per
        // user who sent the triggering event); user_id for a per-event rule.
        let key = dedupKey ?? {
            if compiler.windows.isEmpty { return ["user_id"] }
            if let keyed = compiler.windows.first(where: { $0.keySlot != nil }) { return [keyed.keyName] }
            return []
        }()
        let dedupSlots = key.map { compiler.fields.slot(for: fieldAliases[$0] ?? $0) }
        // Fields no producer is known to write: most likely typos, whose comparisons are always false.
        var knownHere = known
        for name in testEventFields(map["tests"]) { knownHere.insert(name) }
        var warned: Set<String> = []
        for (name, offset) in compiler.referencedFields where !knownHere.contains(name) && warned.insert(name).inserted {
            let (line, column) = position(of: offset, in: conditionNode, text: condition)
            diagnostics.append(unknownField(name, knownHere, file: file, line: line, column: column))
        }
        if let keyNode = map["dedup"]?["key"] {
            let items: [Node] = if case .sequence(let seq) = keyNode { Array(seq) } else { [keyNode] }
            for item in items {
                guard let name = item.string else { continue }
                if KnownFields.isList(name) {
                    diagnostics.append(listKey(name, "a dedup key", "all share the group '-'", file: file, line: item.mark?.line ?? 0, column: item.mark?.column ?? 0))
                }
                guard !knownHere.contains(name), warned.insert(name).inserted else { continue }
                diagnostics.append(unknownField(name, knownHere, file: file, line: item.mark?.line ?? 0, column: item.mark?.column ?? 0))
            }
        }
        for (name, offset) in compiler.keyFields where KnownFields.isList(name) {
            let (line, column) = position(of: offset, in: conditionNode, text: condition)
            diagnostics.append(listKey(name, "a window key (or count_distinct's field)", "not counted and the function is missing for them",
                                       file: file, line: line, column: column))
        }
        fields = compiler.fields
        guard diagnostics.allSatisfy({ $0.level == .warning }) else { return nil }
        let info = RuleInfo(name: name, description: description, severity: severity, action: action,
                            recommendedAction: recommended, condition: condition, dedupKey: key,
                            dedupWindow: dedupWindow, channels: channels, tags: tags, episode: episode,
                            readsBaseline: compiler.readsBaseline)
        return CompiledRule(info: info, file: file, condition: node, filter: filter, filterGates: filterGates,
                            windows: compiler.windows, evidenceFields: compiler.evidenceFields,
                            evidenceMetrics: compiler.evidenceMetrics, dedupSlots: dedupSlots)
    }

    static func unknownField(_ name: String, _ known: KnownFields, file: String, line: Int, column: Int) -> Diagnostic {
        let stats = BaselineStat.allCases.map { "baseline.\($0.rawValue)" }
        let hint = known.nearest(to: name, among: stats).map { "; did you mean '\($0)'?" } ?? ""
        return Diagnostic("unknown_field", .warning,
                          "unknown field '\(name)': not in the inference-log or InferenceWall schema, the derived fields, the config's fields or metrics, or this rule's test events\(hint)",
                          file: file, line: line, column: column)
    }

    /// A window or dedup key that is a list: the engine takes only a scalar as a key.
    static func listKey(_ name: String, _ role: String, _ consequence: String, file: String, line: Int, column: Int) -> Diagnostic {
        let path = fieldAliases[name] ?? name
        let hint = path.hasPrefix("matches.") || path == "matches" ? "; top_signature is one value per scan, the id of the highest-scoring match" : ""
        return Diagnostic("list_key", .warning,
                          "'\(name)' is a list, and \(role) needs one value per event: events whose '\(name)' is a list are \(consequence)\(hint)",
                          file: file, line: line, column: column)
    }

    /// The dotted paths of every field in a rule's test events (`tests: [{events: [...]}]`).
    static func testEventFields(_ tests: Node?) -> [String] {
        guard case .sequence(let cases)? = tests else { return [] }
        var out: [String] = []
        func walk(_ node: Node, _ prefix: String) {
            switch node {
            case .mapping(let m):
                for (k, v) in m {
                    guard let key = k.string else { continue }
                    let path = prefix.isEmpty ? (fieldAliases[key] ?? key) : prefix + "." + key
                    out.append(path)
                    walk(v, path)
                }
            case .sequence(let items):
                for item in items { walk(item, prefix) }
            default: break
            }
        }
        for c in cases {
            guard case .sequence(let events)? = c["events"] else { continue }
            for e in events { walk(e, "") }
        }
        return out
    }

    static func stringList(_ node: Node?, _ key: String, _ file: String, _ diagnostics: inout [Diagnostic]) -> [String]? {
        guard let node else { return nil }
        guard case .sequence(let seq) = node else {
            diagnostics.append(at(node, file, "bad_value", "'\(key)' must be a list, e.g. [a, b]"))
            return nil
        }
        return seq.compactMap(\.string)
    }

    /// Maps a character offset in a condition to the file's line and column.
    static func position(of offset: Int, in node: Node, text: String) -> (Int, Int) {
        guard let mark = node.mark else { return (0, 0) }
        guard case .scalar(let s) = node else { return (mark.line, mark.column) }
        let before = text.prefix(offset)
        let newlines = before.filter { $0 == "\n" }.count
        switch s.style {
        case .literal, .folded:
            // Block scalars start on the next line, indented; assume two spaces past the key.
            let lastLine = before.split(separator: "\n", omittingEmptySubsequences: false).last ?? ""
            return (mark.line + 1 + newlines, mark.column + 2 + lastLine.count)
        case .singleQuoted, .doubleQuoted:
            return newlines == 0 ? (mark.line, mark.column + 1 + offset) : (mark.line + newlines, 1)
        default:
            return newlines == 0 ? (mark.line, mark.column + offset) : (mark.line + newlines, 1)
        }
    }
}
