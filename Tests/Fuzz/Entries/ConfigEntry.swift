import Alerts
import Exports
import Foundation
import IWDetectCore
import Pipeline
import Rules

/// The YAML config loader on the input (written to a private temporary file), then the sinks and
/// export targets (receivers, projections, filters) the config describes, built without an
/// environment.
///
/// The sinks' file paths are redirected into the temporary folder first: a `jsonl` sink opens its
/// file for appending, and a fuzzed path must not create files anywhere else. An empty path stays
/// empty and a path ending in `/` becomes the folder itself, so the failure paths still run.
public func fuzzConfig(_ data: UnsafeRawBufferPointer) {
    let dir = FuzzTempDir()
    defer { dir.remove() }
    let file = dir.path + "/config.yaml"
    guard FileManager.default.createFile(atPath: file, contents: Data(data)) else {
        fuzzCheck(false, "cannot write \(file)")
        return
    }
    var config = EngineConfig(databasePath: dir.path + "/state.db", rulePaths: [])
    do {
        try config.apply(file: file)
    } catch {
        _ = "\(error)"
        return
    }
    for i in config.sinks.indices {
        guard var file = config.sinks[i] as? JSONLFileSinkConfig, !file.path.isEmpty else { continue }
        file.path = file.path.hasSuffix("/") ? dir.path : dir.path + "/sink-\(i).jsonl"
        config.sinks[i] = file
    }
    do {
        let sinks = try config.makeSinks(environment: [:])
        for s in sinks { _ = (s.name, s.isLocal) }
    } catch {
        _ = "\(error)"
    }
    var fields = FieldTable()
    var warnings: [Diagnostic] = []
    do {
        let exporter = try Exporter(config.exports, metrics: config.metrics, lists: [:], fields: &fields, known: KnownFields(),
                                    environment: [:], warnings: &warnings)
        _ = (exporter.names, config.exports.map(\.summary))
    } catch {
        _ = "\(error)"
    }
}
