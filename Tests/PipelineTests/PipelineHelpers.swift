import Alerts
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Pipeline

/// An engine config on a temporary database with the bundled rules and no sinks (alerts stay in
/// the database, where tests read them).
func testConfig(_ dir: TempDir, db: String = "state.db") -> EngineConfig {
    var c = EngineConfig(databasePath: dir.file(db), rulePaths: [packageRoot + "/rules"])
    c.stdout = false
    return c
}

/// A folder holding one rule file with `yaml` (keep it alive while the rules are in use).
func ruleFolder(_ yaml: String) -> TempDir {
    let dir = TempDir()
    dir.write("r.yaml", yaml)
    return dir
}

/// Ingests `lines` as a file through a fresh engine (a new process would do the same).
@discardableResult
func ingest(_ lines: [String], _ dir: TempDir, name: String = "input.jsonl", config: EngineConfig) async throws -> IngestSummary {
    let path = dir.write(name, lines.joined(separator: "\n") + "\n")
    let engine = try Engine(config: config)
    return try await engine.ingest(.file(path))
}

/// The alerts in a database, as parsed JSON without the wall-clock `detected_at`.
func storedAlerts(_ path: String) throws -> [[String: Any]] {
    let db = try openStateDatabase(path)
    return try AlertStore.list(db).map {
        var o = try JSONSerialization.jsonObject(with: Data($0.json.serialized().utf8)) as! [String: Any]
        o["detected_at"] = nil
        o["suppressed_total"] = $0.suppressed
        return o
    }
}

/// A canonical text form of alerts for equality checks.
func canonical(_ alerts: [[String: Any]]) -> [String] {
    alerts.map { String(decoding: try! JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
}
