import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

/// The state database's disk fills up mid-ingest: ingest stops and says so, the last committed batch
/// is intact, and after space is freed the same command resumes with nothing lost or repeated.
///
/// The small disk is a tmpfs the test mounts (as root), else a file-size limit (RLIMIT_FSIZE).
@Suite struct DiskFullTests {
    /// A way to run ingest against a small disk, and then give it room.
    enum SmallDisk {
        case tmpfs(mountPoint: String)
        case fileSizeLimit(kib: Int)

        static func make(in dir: TempDir, kib: Int) -> SmallDisk? {
            let mountPoint = dir.file("small")
            try? FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
            if geteuid() == 0, let r = try? run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(kib)k", "tmpfs", mountPoint]), r.status == 0 {
                return .tmpfs(mountPoint: mountPoint)
            }
            print("DiskFullTests: cannot mount a tmpfs here (not root, or no permission); using RLIMIT_FSIZE instead")
            return FileManager.default.isExecutableFile(atPath: "/bin/bash") ? .fileSizeLimit(kib: kib) : nil
        }

        func databasePath(_ dir: TempDir) -> String {
            switch self {
            case .tmpfs(let m): return m + "/state.db"
            case .fileSizeLimit: return dir.file("small/state.db")
            }
        }

        func ingest(_ arguments: [String], limited: Bool) throws -> ProcessResult {
            if case .fileSizeLimit(let kib) = self, limited {
                let quoted = ([iwDetectBinary] + arguments).map { "'\($0)'" }.joined(separator: " ")
                return try run("/bin/bash", ["-c", "ulimit -f \(kib); exec \(quoted)"])
            }
            return try run(iwDetectBinary, arguments)
        }

        /// Frees space: a bigger tmpfs, or no limit.
        func grow() throws {
            if case .tmpfs(let m) = self {
                #expect(try run("/bin/mount", ["-o", "remount,size=256m", m]).status == 0)
            }
        }

        func remove() {
            if case .tmpfs(let m) = self { _ = try? run("/bin/umount", [m]) }
        }
    }

    @Test func aFullDiskStopsIngestCleanlyAndTheRerunResumes() throws {
        let dir = TempDir()
        guard let disk = SmallDisk.make(in: dir, kib: 1500) else {
            print("DiskFullTests: skipped: neither a tmpfs mount nor bash for RLIMIT_FSIZE is available")
            return
        }
        defer { disk.remove() }
        let lines = DeterminismTests.generated(40_000, seed: 5)
        let input = dir.write("in.jsonl", lines.joined(separator: "\n") + "\n")
        let config = dir.write("config.yaml", "batch_lines: 500\nstdout: false\n")
        let rules = packageRoot + "/rules"
        let reference = try run(iwDetectBinary, ["ingest", input, "--db", dir.file("ref.db"), "--rules", rules, "--config", config])
        #expect(reference.status == 0)

        let db = disk.databasePath(dir)
        let args = ["ingest", input, "--db", db, "--rules", rules, "--config", config]
        let full = try disk.ingest(args, limited: true)
        #expect(full.status == 1, "\(full.stderr)")
        let said = try #require(full.stderr.firstMatch(of: /iw-detect: (.+): cannot commit the next batch: .*Everything before (.+):(\d+) is committed and intact.*run the same command to resume there/),
                                "\(full.stderr)")
        #expect(String(said.1) == db, "the message names the database")
        #expect(String(said.2) == input)
        let stoppedAt = try #require(Int64(said.3))
        #expect(stoppedAt > 1 && stoppedAt < 40_000, "it stopped part way, after committing some batches")
        // The database holds exactly what it says.
        let checkpoint = try Database(path: db).query("SELECT line FROM checkpoints", [], { $0.int(0) }).first
        #expect(checkpoint == stoppedAt)
        try Database(path: db).execute("PRAGMA integrity_check")

        try disk.grow()
        let resumed = try disk.ingest(args + ["--json-summary"], limited: false)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let summary = try #require(jsonLines(resumed.stderr).last)
        #expect(summary["lines_read"] as? Int == 40_000 - Int(stoppedAt) + 1)
        #expect(canonical(try storedAlerts(dir.file("ref.db"))) == canonical(try storedAlerts(db)), "no alert lost or raised twice")
        let buckets = "SELECT metric, segment, hour, count, mean, m2 FROM baseline_hour_buckets ORDER BY metric, segment, hour"
        let row = { (s: Statement) in "\(s.text(0)) \(s.text(1)) \(s.int(2)) \(s.int(3)) \(s.double(4)) \(s.double(5))" }
        #expect(try Database(path: dir.file("ref.db")).query(buckets, [], row) == Database(path: db).query(buckets, [], row),
                "no event counted twice by the baseline")
    }
}
