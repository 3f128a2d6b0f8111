import IWDetectCore
import IWDetectTestSupport
import Testing

@Suite struct MigratorTests {
    let migrations = [Migration("one", "CREATE TABLE t(x INTEGER)"), Migration("two", "ALTER TABLE t ADD COLUMN y TEXT")]

    @Test func appliesOnceAndInOrder() throws {
        let dir = TempDir()
        let db = try Database(path: dir.file("a.db"))
        try Migrator.migrate(db, migrations)
        try Migrator.migrate(db, migrations)
        #expect(try db.query("SELECT name FROM schema_migrations ORDER BY rowid") { $0.text(0) } == ["one", "two"])
        try db.run("INSERT INTO t(x, y) VALUES (1, 'a')")
    }

    @Test func refusesADatabaseFromANewerVersion() throws {
        let dir = TempDir()
        try Migrator.migrate(try Database(path: dir.file("a.db")), migrations + [Migration("three", "CREATE TABLE u(z)")])
        #expect {
            try Migrator.migrate(try Database(path: dir.file("a.db")), migrations)
        } throws: { ($0 as? DatabaseError)?.message.contains("newer iw-detect") == true }
    }

    @Test func refusesAForeignOrCorruptFile() throws {
        let dir = TempDir()
        let foreign = try Database(path: dir.file("other.db"))
        try foreign.execute("CREATE TABLE somebody_elses(x)")
        #expect { try Migrator.migrate(foreign, migrations) } throws: { ($0 as? DatabaseError)?.message.contains("not an iw-detect one") == true }
        let garbage = dir.write("garbage.db", String(repeating: "not sqlite ", count: 1000))
        #expect { try Migrator.migrate(try Database(path: garbage), migrations) } throws: { ($0 as? DatabaseError)?.message.contains("garbage.db") == true }
    }
}
