import Baseline
import Foundation
import IWDetectCore
import Rules

/// The baseline as the read-only and maintenance commands see it (`baseline show`, `export`,
/// `recompute`): loaded from the state database with the config's metrics and settings, without
/// rules or sinks (so no webhook secret is needed to look at a baseline).
public enum BaselineMaintenance {
    /// The stored baseline: buckets, the current snapshot, any imported seed.
    public static func load(_ config: EngineConfig, from db: Database) throws -> BaselineModel {
        var fields = FieldTable()
        var model = BaselineModel(settings: config.baseline, metrics: config.metrics, fields: &fields)
        try BaselineStore.load(&model, from: db)
        return model
    }

    /// Recomputes the snapshot at the stored stream clock and saves it.
    /// - Returns: the entries before and after, and the recomputed model.
    public static func recompute(_ config: EngineConfig, in db: Database) throws
        -> (before: [SnapshotEntry], after: [SnapshotEntry], model: BaselineModel, clock: EventTime) {
        let clock = try RuleStateStore.clock(in: db)
        guard !clock.isUnset else {
            throw ConfigError("\(db.path): no event has been ingested yet, so there is no stream time to recompute the baseline at")
        }
        var model = try load(config, from: db)
        let before = model.entries
        // Admitting a shift raises an alert, which only the pipeline can: not here.
        model.recompute(at: clock, admitting: false)
        try db.transaction { try BaselineStore.save(&model, to: db) }
        return (before, model.entries, model, clock)
    }
}
