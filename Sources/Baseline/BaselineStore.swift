import IWDetectCore

/// Persistence of ``BaselineModel`` in the state database.
public enum BaselineStore {
    public static let migrations: [Migration] = [
        Migration("baseline-1", """
            CREATE TABLE baseline_buckets (
                metric TEXT NOT NULL, segment TEXT NOT NULL, day INTEGER NOT NULL,
                count INTEGER NOT NULL, mean REAL NOT NULL, m2 REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
                sketch BLOB NOT NULL,
                PRIMARY KEY (metric, segment, day)
            ) WITHOUT ROWID;
            CREATE TABLE baseline_snapshots (
                id INTEGER PRIMARY KEY, window_start_day INTEGER NOT NULL, window_end_day INTEGER NOT NULL,
                computed_at_stream TEXT NOT NULL
            );
            CREATE TABLE baseline_stats (
                snapshot_id INTEGER NOT NULL REFERENCES baseline_snapshots(id) ON DELETE CASCADE,
                metric TEXT NOT NULL, segment TEXT NOT NULL,
                n INTEGER NOT NULL, mean REAL NOT NULL, std REAL NOT NULL, p95 REAL NOT NULL, p99 REAL NOT NULL,
                min REAL NOT NULL, max REAL NOT NULL, ready INTEGER NOT NULL,
                PRIMARY KEY (snapshot_id, metric, segment)
            ) WITHOUT ROWID;
            CREATE TABLE baseline_state (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
            """),
        Migration("baseline-2-seed", """
            CREATE TABLE baseline_seed (
                metric TEXT NOT NULL, segment TEXT NOT NULL,
                n INTEGER NOT NULL, mean REAL NOT NULL, std REAL NOT NULL, p95 REAL NOT NULL, p99 REAL NOT NULL,
                min REAL NOT NULL, max REAL NOT NULL, source TEXT NOT NULL,
                PRIMARY KEY (metric, segment)
            ) WITHOUT ROWID;
            """),
        Migration("baseline-3-days", "ALTER TABLE baseline_stats ADD COLUMN days INTEGER NOT NULL DEFAULT 0"),
        // NULL in rows written before: the normal approximation stands in (RobustStats.normal).
        Migration("baseline-4-robust", (["baseline_stats", "baseline_seed"].flatMap { table in
            robustColumns.map { "ALTER TABLE \(table) ADD COLUMN \($0) REAL" }
        }).joined(separator: ";\n")),
        quarantineMigration,
        seasonMigration,
        hoursMigration,
    ]

    /// Hourly buckets for sliding windows. A day's bucket from before becomes its day's first hour,
    /// so it leaves the window when its day would have; a snapshot's or season's count of days with
    /// samples becomes a span of 24 hours a day; a quarantine's overall rows (`bin < 0`) are keyed
    /// by hour too (`period`), its seasonal ones stay by day.
    static let hoursMigration = Migration("baseline-7-hours", """
        CREATE TABLE baseline_hour_buckets (
            metric TEXT NOT NULL, segment TEXT NOT NULL, hour INTEGER NOT NULL,
            count INTEGER NOT NULL, mean REAL NOT NULL, m2 REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
            sketch BLOB NOT NULL,
            PRIMARY KEY (metric, segment, hour)
        ) WITHOUT ROWID;
        INSERT INTO baseline_hour_buckets SELECT metric, segment, day * 24, count, mean, m2, min, max, sketch FROM baseline_buckets;
        DROP TABLE baseline_buckets;
        ALTER TABLE baseline_snapshots RENAME COLUMN window_start_day TO window_start_hour;
        ALTER TABLE baseline_snapshots RENAME COLUMN window_end_day TO window_end_hour;
        UPDATE baseline_snapshots SET window_start_hour = window_start_hour * 24, window_end_hour = window_end_hour * 24 + 23;
        ALTER TABLE baseline_stats RENAME COLUMN days TO span_hours;
        UPDATE baseline_stats SET span_hours = span_hours * 24;
        ALTER TABLE baseline_season_stats RENAME COLUMN days TO span_hours;
        UPDATE baseline_season_stats SET span_hours = span_hours * 24;
        CREATE TABLE baseline_quarantine_periods (
            segment TEXT NOT NULL, period INTEGER NOT NULL, metric TEXT NOT NULL, bin INTEGER NOT NULL,
            count INTEGER NOT NULL, mean REAL NOT NULL, m2 REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, sketch BLOB NOT NULL,
            PRIMARY KEY (segment, period, metric, bin)
        ) WITHOUT ROWID;
        INSERT INTO baseline_quarantine_periods
            SELECT segment, CASE WHEN bin < 0 THEN day * 24 ELSE day END, metric, bin, count, mean, m2, min, max, sketch
            FROM baseline_quarantine_buckets;
        DROP TABLE baseline_quarantine_buckets;
        """)

    static let quarantineMigration = Migration("baseline-5-quarantine", """
        CREATE TABLE baseline_quarantine (
            segment TEXT PRIMARY KEY NOT NULL, start INTEGER NOT NULL, last INTEGER NOT NULL,
            events INTEGER NOT NULL, seen INTEGER NOT NULL, users TEXT NOT NULL, sessions TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE baseline_quarantine_buckets (
            segment TEXT NOT NULL, day INTEGER NOT NULL, metric TEXT NOT NULL, bin INTEGER NOT NULL,
            count INTEGER NOT NULL, mean REAL NOT NULL, m2 REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, sketch BLOB NOT NULL,
            PRIMARY KEY (segment, day, metric, bin)
        ) WITHOUT ROWID;
        """)

    static let seasonMigration = Migration("baseline-6-seasons", """
        CREATE TABLE baseline_season_buckets (
            metric TEXT NOT NULL, segment TEXT NOT NULL, day INTEGER NOT NULL, bin INTEGER NOT NULL,
            count INTEGER NOT NULL, mean REAL NOT NULL, m2 REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, sketch BLOB NOT NULL,
            PRIMARY KEY (metric, segment, day, bin)
        ) WITHOUT ROWID;
        CREATE TABLE baseline_season_stats (
            metric TEXT NOT NULL, segment TEXT NOT NULL, bin INTEGER NOT NULL,
            n INTEGER NOT NULL, mean REAL NOT NULL, std REAL NOT NULL, p95 REAL NOT NULL, p99 REAL NOT NULL,
            min REAL NOT NULL, max REAL NOT NULL, ready INTEGER NOT NULL, days INTEGER NOT NULL, snapshot_id INTEGER NOT NULL,
            season_samples INTEGER NOT NULL,
            p01 REAL, p05 REAL, p10 REAL, p25 REAL, median REAL, p75 REAL, p90 REAL, p999 REAL, mad REAL, mean_abs_dev REAL,
            PRIMARY KEY (metric, segment, bin)
        ) WITHOUT ROWID;
        """)

    /// The columns of a bucket row after its key, and their values.
    static let bucketColumns = "count, mean, m2, min, max, sketch"

    static func bucketValues(_ b: DailyBucket) -> [SQLValue] {
        [.int(b.stats.count), .double(b.stats.mean), .double(b.stats.m2), .double(b.stats.min), .double(b.stats.max), .blob(b.sketch.serialized())]
    }

    /// The bucket in the ``bucketColumns`` of `s` from `offset`; `what` names it when its sketch is corrupt.
    static func bucket(_ s: Statement, at offset: Int32, _ what: @autoclosure () -> String, in db: Database) throws -> DailyBucket {
        let stats = RunningStats(count: s.int(offset), mean: s.double(offset + 1), m2: s.double(offset + 2), min: s.double(offset + 3), max: s.double(offset + 4))
        guard let sketch = DDSketch(serialized: s.blob(offset + 5)), DailyBucket.fits(stats, sketch) else {
            throw DatabaseError(code: 0, message: "\(db.path): \(what()) has a corrupt sketch")
        }
        return DailyBucket(stats: stats, sketch: sketch)
    }

    /// A bucket as ``bucket(_:at:_:in:)`` reads it, packed (its sketch already is, unless an
    /// earlier version wrote it dense).
    static func packedBucket(_ s: Statement, at offset: Int32, _ what: @autoclosure () -> String, in db: Database) throws -> PackedBucket {
        let stats = RunningStats(count: s.int(offset), mean: s.double(offset + 1), m2: s.double(offset + 2), min: s.double(offset + 3), max: s.double(offset + 4))
        let blob = s.blob(offset + 5)
        // A dense row of an earlier version is checked as it is read, then packed.
        let packed = blob.starts(with: DDSketch.packedTag) ? blob : DDSketch(serialized: blob).map { $0.packed() }
        guard let packed, let bucket = PackedBucket(stats: stats, packedSketch: packed) else {
            throw DatabaseError(code: 0, message: "\(db.path): \(what()) has a corrupt sketch")
        }
        return bucket
    }

    /// The columns of ``RobustStats``, in its order.
    static let robustColumns = ["p01", "p05", "p10", "p25", "median", "p75", "p90", "p999", "mad", "mean_abs_dev"]
    static var robustSelect: String { robustColumns.joined(separator: ", ") }

    static func robustValues(_ r: RobustStats) -> [SQLValue] {
        [r.p01, r.p05, r.p10, r.p25, r.median, r.p75, r.p90, r.p999, r.mad, r.meanAbsoluteDeviation].map { .double($0) }
    }

    /// The robust columns read from `s` starting at `offset`; nil when a row predates them.
    static func robust(_ s: Statement, at offset: Int32) -> RobustStats? {
        guard !s.isNull(offset) else { return nil }
        let v = (0..<Int32(robustColumns.count)).map { s.double(offset + $0) }
        return RobustStats(p01: v[0], p05: v[1], p10: v[2], p25: v[3], median: v[4], p75: v[5], p90: v[6], p999: v[7],
                           mad: v[8], meanAbsoluteDeviation: v[9])
    }

    /// Restores buckets, the latest snapshot and the schedule.
    public static func load(_ model: inout BaselineModel, from db: Database) throws {
        let index = Dictionary(uniqueKeysWithValues: model.metrics.enumerated().map { ($1.name, $0) })
        let rows = try db.query("SELECT metric, segment, hour, \(bucketColumns) FROM baseline_hour_buckets ORDER BY segment, hour") { s in
            (s.text(0), s.text(1), s.int(2), try packedBucket(s, at: 3, "baseline bucket \(s.text(0))/\(s.text(1))/hour \(s.int(2))", in: db))
        }
        for (metric, segment, hour, bucket) in rows {
            guard let m = index[metric], let seg = model.segment(named: segment) else { continue }
            var buckets = model.hours[hour] ?? []
            while buckets.count <= seg { buckets.append(model.emptyPacked) }
            buckets[seg][m] = bucket
            model.hours[hour] = buckets
        }
        model.folds = WindowFolds()  // folded from the buckets as loaded, at the next recompute
        for (metric, segment, st) in try db.query("SELECT metric, segment, n, mean, std, p95, p99, min, max, \(robustSelect) FROM baseline_seed", [], { s in
            (s.text(0), s.text(1), MetricStats(n: s.int(2), mean: s.double(3), std: s.double(4), p95: s.double(5), p99: s.double(6),
                                               min: s.double(7), max: s.double(8), snapshotID: 0, ready: true, segment: s.text(1),
                                               robust: robust(s, at: 9)))
        }) {
            guard let m = index[metric] else { continue }
            model.seed[segment, default: Array(repeating: nil, count: model.metrics.count)][m] = st
        }
        let state = Dictionary(uniqueKeysWithValues: try db.query("SELECT key, value FROM baseline_state") { ($0.text(0), $0.int(1)) })
        model.lastRecomputeSlot = state["last_recompute_slot"] ?? .min
        model.excluded = state["excluded"] ?? 0
        model.quarantineCounts = (state["quarantined"] ?? 0, state["shifts_admitted"] ?? 0, state["quarantines_refused"] ?? 0)
        try loadSeasons(&model, from: db, metrics: index, fingerprint: state["season_config"])
        try loadQuarantines(&model, from: db, metrics: index)
        if let snap = try db.query("SELECT id, window_start_hour, window_end_hour, computed_at_stream FROM baseline_snapshots ORDER BY id DESC LIMIT 1", [], { ($0.int(0), $0.int(1), $0.int(2), $0.text(3)) }).first {
            model.snapshotID = snap.0
            model.snapshotWindow = snap.1...snap.2
            model.snapshotComputedAt = Timestamp.parse(snap.3)
            let stats = try db.query("SELECT metric, segment, n, mean, std, p95, p99, min, max, ready, span_hours, \(robustSelect) FROM baseline_stats WHERE snapshot_id = ?", [.int(snap.0)]) { s in
                (s.text(0), s.text(1), MetricStats(n: s.int(2), mean: s.double(3), std: s.double(4), p95: s.double(5), p99: s.double(6),
                                                   min: s.double(7), max: s.double(8), snapshotID: snap.0, ready: s.int(9) != 0,
                                                   segment: s.text(1), span: Int(s.int(10)), robust: robust(s, at: 11)))
            }
            for (metric, segment, st) in stats {
                if let m = index[metric], let seg = model.segment(named: segment) { model.snapshot[seg][m] = st }
            }
        }
    }

    /// Writes what changed since the last save; call inside the batch's transaction.
    public static func save(_ model: inout BaselineModel, to db: Database) throws {
        model.closeOpen()
        // Buckets an admission emptied go first: a late event may have refilled one since.
        for c in model.clearedBuckets {
            try db.run("DELETE FROM baseline_hour_buckets WHERE metric = ? AND segment = ? AND hour = ?",
                       [.text(model.metrics[c.metric].name), .text(model.segments[c.segment]), .int(c.hour)])
        }
        model.clearedBuckets.removeAll()
        for hour in model.dirtyHours.sorted() {
            guard let buckets = model.hours[hour] else { continue }
            for (seg, metrics) in buckets.enumerated() {
                for (m, b) in metrics.enumerated() where b.stats.count > 0 {
                    try db.run("""
                        INSERT INTO baseline_hour_buckets(metric, segment, hour, \(bucketColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(metric, segment, hour) DO UPDATE SET count=excluded.count, mean=excluded.mean, m2=excluded.m2,
                            min=excluded.min, max=excluded.max, sketch=excluded.sketch
                        """, [.text(model.metrics[m].name), .text(model.segments[seg]), .int(hour), .int(b.stats.count), .double(b.stats.mean),
                              .double(b.stats.m2), .double(b.stats.min), .double(b.stats.max), .blob(b.sketch)])
                }
            }
        }
        model.dirtyHours.removeAll()
        let savedDays = model.dirtySeasonDays.sorted()
        model.dirtySeasonDays.removeAll()
        for snap in model.unsavedSnapshots {
            try writeSnapshot(id: snap.id, window: snap.window, computedAt: snap.computedAt.description, entries: snap.entries, to: db)
        }
        if let window = model.unsavedSnapshots.last?.window {
            // Snapshots older than the window are history nobody reads.
            try db.run("DELETE FROM baseline_snapshots WHERE window_end_hour < ?", [.int(window.lowerBound)])
            try db.run("DELETE FROM baseline_hour_buckets WHERE hour < ?", [.int(BaselineModel.firstKeptHour(windowStart: window.lowerBound))])
        }
        model.unsavedSnapshots.removeAll()
        try saveQuarantines(&model, to: db)
        try saveSeasons(&model, days: savedDays, to: db)
        try db.run("""
            INSERT OR REPLACE INTO baseline_state(key, value) VALUES ('last_recompute_slot', ?), ('excluded', ?), ('quarantined', ?),
                ('shifts_admitted', ?), ('quarantines_refused', ?)
            """, [.int(model.lastRecomputeSlot), .int(model.excluded), .int(model.quarantineCounts.events),
                  .int(model.quarantineCounts.admitted), .int(model.quarantineCounts.refused)])
    }

    static func loadSeasons(_ model: inout BaselineModel, from db: Database, metrics index: [String: Int], fingerprint: Int64?) throws {
        guard let season = model.settings.seasonality, !model.seasonalMetrics.isEmpty else { return }
        let names = model.seasonalMetrics.map { model.metrics[$0].name }
        guard fingerprint == season.fingerprint(metrics: names) else {
            // Another seasonality (or none) made what is stored: start the seasons afresh.
            model.seasonReset = true
            return
        }
        let bins = season.bins
        let rows = try db.query("SELECT metric, segment, day, bin, \(bucketColumns) FROM baseline_season_buckets ORDER BY segment, day") { s in
            (s.text(0), s.text(1), s.int(2), Int(s.int(3)),
             try bucket(s, at: 4, "seasonal bucket \(s.text(0))/\(s.text(1))/\(s.int(2))/\(s.int(3))", in: db))
        }
        for (metric, segment, day, bin, bucket) in rows {
            guard let m = index[metric], let p = model.seasonPosition[m], bin >= 0, bin < bins, let seg = model.segment(named: segment) else { continue }
            var buckets = model.seasonDays[day] ?? []
            while buckets.count <= seg { buckets.append(model.emptySeason) }
            buckets[seg][p * bins + bin] = bucket
            model.seasonDays[day] = buckets
        }
        model.closedSeasonDays = nil
        model.seasonSnapshot = Array(repeating: Array(repeating: nil, count: model.seasonWidth), count: model.segments.count)
        let stats = try db.query("""
            SELECT metric, segment, bin, n, mean, std, p95, p99, min, max, ready, span_hours, snapshot_id, season_samples, \(robustSelect)
            FROM baseline_season_stats
            """) { s in
            var st = MetricStats(n: s.int(3), mean: s.double(4), std: s.double(5), p95: s.double(6), p99: s.double(7), min: s.double(8),
                                 max: s.double(9), snapshotID: s.int(12), ready: s.int(10) != 0, segment: s.text(1), span: Int(s.int(11)),
                                 robust: robust(s, at: 14))
            st.season = Int(s.int(2))
            st.seasonSamples = s.int(13)
            return (s.text(0), s.text(1), Int(s.int(2)), st)
        }
        for (metric, segment, bin, st) in stats {
            guard let m = index[metric], let p = model.seasonPosition[m], bin >= 0, bin < bins, let seg = model.segmentIndex[segment] else { continue }
            while model.seasonSnapshot.count <= seg { model.seasonSnapshot.append(Array(repeating: nil, count: model.seasonWidth)) }
            model.seasonSnapshot[seg][p * bins + bin] = st
        }
    }

    static func saveSeasons(_ model: inout BaselineModel, days: [Int64], to db: Database) throws {
        guard let season = model.settings.seasonality, !model.seasonalMetrics.isEmpty else { return }
        if model.seasonReset {
            try db.run("DELETE FROM baseline_season_buckets")
            try db.run("DELETE FROM baseline_season_stats")
            try db.run("DELETE FROM baseline_quarantine_periods WHERE bin >= 0")
            model.seasonReset = false
        }
        let bins = season.bins
        for day in days {
            guard let buckets = model.seasonDays[day] else { continue }
            try db.run("DELETE FROM baseline_season_buckets WHERE day = ?", [.int(day)])
            for (seg, row) in buckets.enumerated() {
                for (flat, b) in row.enumerated() where b.stats.count > 0 {
                    try db.run("INSERT INTO baseline_season_buckets(metric, segment, day, bin, \(bucketColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               [.text(model.metrics[model.seasonalMetrics[flat / bins]].name), .text(model.segments[seg]), .int(day),
                                .int(Int64(flat % bins))] + bucketValues(b))
                }
            }
        }
        if let startDay = model.seasonWindowStartDay {
            try db.run("DELETE FROM baseline_season_buckets WHERE day < ?", [.int(startDay - 2)])
        }
        if model.seasonSnapshotUnsaved {
            try db.run("DELETE FROM baseline_season_stats")
            for (seg, row) in model.seasonSnapshot.enumerated() {
                for (flat, st) in row.enumerated() {
                    guard let st else { continue }
                    try db.run("""
                        INSERT INTO baseline_season_stats(metric, segment, bin, n, mean, std, p95, p99, min, max, ready, span_hours, snapshot_id,
                            season_samples, \(robustSelect)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """, [.text(model.metrics[model.seasonalMetrics[flat / bins]].name), .text(model.segments[seg]), .int(Int64(flat % bins)),
                              .int(st.n), .double(st.mean), .double(st.std), .double(st.p95), .double(st.p99), .double(st.min), .double(st.max),
                              .int(st.ready ? 1 : 0), .int(Int64(st.span)), .int(st.snapshotID), .int(st.seasonSamples)] + robustValues(st.robust))
                }
            }
            model.seasonSnapshotUnsaved = false
        }
        try db.run("INSERT OR REPLACE INTO baseline_state(key, value) VALUES ('season_config', ?)",
                   [.int(season.fingerprint(metrics: model.seasonalMetrics.map { model.metrics[$0].name }))])
    }

    static func loadQuarantines(_ model: inout BaselineModel, from db: Database, metrics index: [String: Int]) throws {
        func names(_ text: String) -> Set<String> {
            guard case .array(let items)? = try? JSONValue.parse(text) else { return [] }
            return Set(items.compactMap { if case .string(let s) = $0 { return s } else { return nil } })
        }
        for (segment, q) in try db.query("SELECT segment, start, last, events, seen, users, sessions FROM baseline_quarantine", [], {
            ($0.text(0), Quarantine(start: $0.int(1), last: $0.int(2), events: $0.int(3), seen: $0.int(4), users: names($0.text(5)), sessions: names($0.text(6))))
        }) {
            guard let s = model.segment(named: segment) else { continue }
            model.quarantines[s] = q
        }
        let rows = try db.query("SELECT segment, period, metric, bin, \(bucketColumns) FROM baseline_quarantine_periods") { s in
            (s.text(0), s.int(1), s.text(2), Int(s.int(3)),
             try bucket(s, at: 4, "quarantine bucket \(s.text(2))/\(s.text(0))/\(s.int(1))", in: db))
        }
        let bins = model.seasonBins
        for (segment, period, metric, bin, bucket) in rows {
            guard let m = index[metric], let s = model.segmentIndex[segment], model.quarantines[s] != nil else { continue }
            if bin < 0 {
                var buckets = model.quarantines[s]!.hours[period] ?? model.emptyBuckets
                buckets[m] = bucket
                model.quarantines[s]!.hours[period] = buckets
            } else if let p = model.seasonPosition[m], bin < bins, !model.seasonReset {
                var buckets = model.quarantines[s]!.seasonDays[period] ?? model.emptySeason
                buckets[p * bins + bin] = bucket
                model.quarantines[s]!.seasonDays[period] = buckets
            }
        }
    }

    static func saveQuarantines(_ model: inout BaselineModel, to db: Database) throws {
        // Every open quarantine (its count of the segment's events moves with each event) and
        // those closed since the last save.
        for s in model.dirtyQuarantines.union(model.quarantines.keys).sorted() {
            let name = model.segments[s]
            guard let q = model.quarantines[s] else {
                try db.run("DELETE FROM baseline_quarantine WHERE segment = ?", [.text(name)])
                try db.run("DELETE FROM baseline_quarantine_periods WHERE segment = ?", [.text(name)])
                continue
            }
            func list(_ set: Set<String>) -> SQLValue { .text(JSONValue.array(set.sorted().map { .string($0) }).serialized()) }
            try db.run("INSERT OR REPLACE INTO baseline_quarantine(segment, start, last, events, seen, users, sessions) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [.text(name), .int(q.start), .int(q.last), .int(q.events), .int(q.seen), list(q.users), list(q.sessions)])
        }
        func put(_ b: DailyBucket, segment name: String, period: Int64, metric m: Int, bin: Int) throws {
            try db.run("INSERT OR REPLACE INTO baseline_quarantine_periods(segment, period, metric, bin, \(bucketColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [.text(name), .int(period), .text(model.metrics[m].name), .int(Int64(bin))] + bucketValues(b))
        }
        for d in model.dirtyQuarantineHours.sorted(by: { ($0.segment, $0.period) < ($1.segment, $1.period) }) {
            let name = model.segments[d.segment]
            guard let buckets = model.quarantines[d.segment]?.hours[d.period] else {
                try db.run("DELETE FROM baseline_quarantine_periods WHERE segment = ? AND period = ? AND bin < 0", [.text(name), .int(d.period)])
                continue
            }
            for (m, b) in buckets.enumerated() where b.stats.count > 0 { try put(b, segment: name, period: d.period, metric: m, bin: -1) }
        }
        for d in model.dirtyQuarantineSeasonDays.sorted(by: { ($0.segment, $0.period) < ($1.segment, $1.period) }) {
            let name = model.segments[d.segment]
            guard let season = model.settings.seasonality, let row = model.quarantines[d.segment]?.seasonDays[d.period] else {
                try db.run("DELETE FROM baseline_quarantine_periods WHERE segment = ? AND period = ? AND bin >= 0", [.text(name), .int(d.period)])
                continue
            }
            for (flat, b) in row.enumerated() where b.stats.count > 0 {
                try put(b, segment: name, period: d.period, metric: model.seasonalMetrics[flat / season.bins], bin: flat % season.bins)
            }
        }
        model.dirtyQuarantines.removeAll()
        model.dirtyQuarantineHours.removeAll()
        model.dirtyQuarantineSeasonDays.removeAll()
    }

    static func writeSnapshot(id: Int64, window: ClosedRange<Int64>, computedAt: String, entries: [SnapshotEntry], to db: Database) throws {
        try db.run("INSERT OR REPLACE INTO baseline_snapshots(id, window_start_hour, window_end_hour, computed_at_stream) VALUES (?, ?, ?, ?)",
                   [.int(id), .int(window.lowerBound), .int(window.upperBound), .text(computedAt)])
        for e in entries {
            let st = e.stats
            try db.run("INSERT OR REPLACE INTO baseline_stats(snapshot_id, metric, segment, n, mean, std, p95, p99, min, max, ready, span_hours, \(robustSelect)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [.int(id), .text(e.metric), .text(e.segment), .int(st.n), .double(st.mean), .double(st.std),
                        .double(st.p95), .double(st.p99), .double(st.min), .double(st.max), .int(st.ready ? 1 : 0), .int(Int64(st.span))]
                        + robustValues(st.robust))
        }
    }

    /// Replaces the seed with `entries` (from an exported snapshot); returns how many were stored.
    public static func importSeed(_ entries: [SnapshotEntry], source: String, into db: Database) throws -> Int {
        try db.transaction {
            try db.run("DELETE FROM baseline_seed")
            for e in entries {
                let st = e.stats
                try db.run("INSERT INTO baseline_seed(metric, segment, n, mean, std, p95, p99, min, max, source, \(robustSelect)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [.text(e.metric), .text(e.segment), .int(st.n), .double(st.mean), .double(st.std), .double(st.p95),
                            .double(st.p99), .double(st.min), .double(st.max), .text(source)] + robustValues(st.robust))
            }
        }
        return entries.count
    }
}
