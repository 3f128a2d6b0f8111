import ArgumentParser
import Dashboard
import Foundation
import IWDetectCore
import Pipeline
import Rules

/// What `session` and `user` print: each event in time order with its source and line and the
/// alerts it raised; prompts, outputs and tool arguments only with `--show-text`.
struct ForensicOutput {
    var json: Bool
    var showText: Bool

    /// The members that carry text a user or a model wrote.
    /// What alerts redact (``EvaluationSettings/redactedFields``) and a few more.
    static let textKeys: Set<String> = EvaluationSettings().redactedFields.union(["prompt", "messages", "system_prompt"])

    func redacted(_ event: JSONValue) -> JSONValue {
        guard !showText, case .object(let members) = event else { return event }
        return .object(members.compactMap { key, value in
            if ForensicOutput.textKeys.contains(key) { return nil }
            if key == "tool_calls", case .array(let calls) = value {
                return (key, .array(calls.map { call in
                    if case .object(let m) = call { return .object(m.filter { $0.0 != "arguments" }) }
                    return call
                }))
            }
            if key == "matches", case .array(let list) = value {
                return (key, .array(list.map { m in
                    if case .object(let o) = m { return .object(o.filter { $0.0 != "matched_text" }) }
                    return m
                }))
            }
            return (key, value)
        })
    }

    func print(_ q: ForensicQuery, what: String) {
        for h in q.hits {
            if json {
                var o: [(String, JSONValue)] = [("source", .string(h.source)), ("line", .int(h.line))]
                if h.readFrom != h.path { o.append(("read_from", .string(h.readFrom))) }
                o.append(("event", redacted(h.event)))
                o.append(("alerts", .array(h.alerts.map { .object([("rule", .string($0.rule)), ("severity", .string($0.severity)), ("id", .string($0.id))]) })))
                Swift.print(JSONValue.object(o).serialized())
            } else {
                Swift.print(readable(h))
            }
        }
        for r in q.securityRecords {
            Swift.print(json ? JSONValue.object([("security_record", r)]).serialized() : "security record (index past retention.hot_days): " + r.serialized())
        }
        for g in q.gaps {
            printErr("\(g.source): lines \(g.firstLine)–\(g.lastLine) (\(g.events) event(s) of this \(what)) are missing: \(g.reason)")
        }
        if q.hits.isEmpty && q.gaps.isEmpty && q.securityRecords.isEmpty { printErr("no events of this \(what) in the index") }
    }

    func readable(_ h: ForensicQuery.Hit) -> String {
        let e = h.event
        var parts = [e["timestamp"]?.stringValue ?? "?", "\(h.source):\(h.line)"]
        for (label, key) in [("user", "user_id"), ("session", "session_id"), ("model", "model_id"), ("injection", "input_injection_score"),
                             ("risk", "risk_score"), ("pii", "output_pii_detected"), ("guardrail", "guardrail_action"),
                             ("decision", "decision"), ("type", "log_type")] {
            if let v = e[key], v != .null { parts.append("\(label)=\(v.stringValue ?? v.serialized())") }
        }
        if case .array(let calls)? = e["tool_calls"], !calls.isEmpty {
            parts.append("tools=" + calls.compactMap { $0["name"]?.stringValue }.joined(separator: ","))
        }
        if showText {
            for key in ["user_input", "model_output"] { if let t = e[key]?.stringValue { parts.append("\(key)=\(JSONValue.string(t).serialized())") } }
        }
        if h.readFrom != h.path { parts.append("(read from \(h.readFrom))") }
        var s = parts.joined(separator: "  ")
        for a in h.alerts { s += "  ALERT \(a.rule) (\(a.severity)) [\(a.id)]" }
        return s
    }
}

/// The options `session` and `user` share.
struct ForensicOptions: ParsableArguments {
    @Flag(help: "Also print prompts, outputs and tool arguments (read from the source; never stored).") var showText = false
    @Flag(help: "One JSON object per line (the default in a pipe).") var json = false
    @Option(help: ArgumentHelp("The input journal of serve (default: beside the database).", valueName: "path")) var journal: String?

    /// `--journal`, else `IW_DETECT_JOURNAL`, else the config's `serve.journal`, else beside the database.
    func journalPath(_ common: CommonOptions) throws -> String {
        if let journal { return journal }
        if let v = common.environment["IW_DETECT_JOURNAL"], !v.isEmpty { return v }
        return try common.engineConfig().serve.journalPath(forDatabase: common.databasePath)
    }
    var output: ForensicOutput { ForensicOutput(json: json || !isTerminal(STDOUT_FILENO), showText: showText) }
}

struct SessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session",
        abstract: "Every event of a session in time order, read back from its source, with the alerts it raised.")
    @OptionGroup var common: CommonOptions
    @Argument(help: "The session_id.") var id: String
    @OptionGroup var options: ForensicOptions

    func run() async throws {
        let db = try common.existingDatabase()
        options.output.print(try ForensicQuery.session(db, id: id, journalPath: try options.journalPath(common)), what: "session")
    }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Every event of a user over the last days of stream time, in time order, with the alerts they raised.")
    @OptionGroup var common: CommonOptions
    @Argument(help: "The user_id.") var id: String
    @Option(help: "Days back from the stream clock.") var days = 30
    @OptionGroup var options: ForensicOptions

    func validate() throws {
        guard days >= 1 && days <= 36_500 else { throw ValidationError("--days must be from 1 to 36500") }
    }

    func run() async throws {
        let db = try common.existingDatabase()
        let clock = try db.query("SELECT max(last_time) FROM forensic_chunks UNION ALL SELECT max(last_time) FROM forensic_postings UNION ALL SELECT max(time) / 1000000 FROM security_events") {
            $0.isNull(0) ? nil : $0.int(0)
        }.compactMap { $0 }.max()
        let since = (clock ?? Int64(Date().timeIntervalSince1970)) - Int64(days) * 86_400
        options.output.print(try ForensicQuery.user(db, id: id, since: since, journalPath: try options.journalPath(common)), what: "user")
    }
}

struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Deletes what is past its retention (retention: in the config) at the stored stream time, and frees the space.",
        discussion: "Ingest, tail and serve prune on their own once per day of stream time; this runs it now. A database made before incremental auto-vacuum is rebuilt once (VACUUM).")
    @OptionGroup var common: CommonOptions
    @Flag(help: "Wait for another writer of the database to finish instead of exiting 1.") var wait = false

    func run() async throws {
        let config = try common.engineConfig()
        let lock = try common.lockDatabase(waiting: wait, command: "prune")
        let db = try openStateDatabase(common.databasePath)
        let before = fileSize(common.databasePath)
        let clocks = try db.query("SELECT max(last_time) FROM forensic_chunks UNION ALL SELECT max(last_time) FROM forensic_postings UNION ALL SELECT max(time) / 1000000 FROM security_events UNION ALL SELECT max(event_time) / 1000000 FROM alerts") {
            $0.isNull(0) ? nil : $0.int(0)
        }.compactMap { $0 }
        guard let clock = clocks.max() else {
            printErr("nothing to prune: the database holds no events")
            return
        }
        let p = try db.transaction { try Forensics.prune(db, clock: EventTime(micros: clock * 1_000_000), settings: config.retention) }
        try db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        try Forensics.freeSpace(db, rebuild: true)
        try db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        withExtendedLifetime(lock) {}
        printErr("pruned at stream time \(EventTime(micros: clock * 1_000_000)): \(p.postings) index chunk(s), \(p.sessions) user-session chunk(s) or pair(s), \(p.rollups) hourly rollup(s), \(p.securityEvents) security event(s), \(p.alerts) alert(s), \(p.rejects) reject(s); \(common.databasePath): \(before) → \(fileSize(common.databasePath)) bytes")
    }

    func fileSize(_ path: String) -> Int64 { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0 }
}
