import Foundation
import Rules

/// Notices that rule files changed (`--watch-rules`): a signature of every rule file's path, size
/// and modification time, compared at most once a second. The built-in rules never change.
struct RuleWatcher {
    let paths: [String]
    private var signature: [String]
    private var lastLook = Date.distantPast

    init(paths: [String]) {
        self.paths = paths
        signature = RuleWatcher.signature(paths)
    }

    /// Whether the files changed since the last call that said so.
    mutating func changed(now: Date = Date()) -> Bool {
        guard now.timeIntervalSince(lastLook) >= 1 else { return false }
        lastLook = now
        let current = RuleWatcher.signature(paths)
        guard current != signature else { return false }
        signature = current
        return true
    }

    /// Takes the files as they are now as seen (after a reload for another reason).
    mutating func resync() { signature = RuleWatcher.signature(paths) }

    static func signature(_ paths: [String]) -> [String] {
        let fm = FileManager.default
        var out: [String] = []
        for path in paths where path != BundledRuleFiles.path {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else { out.append(path + " missing"); continue }
            let files = isDir.boolValue
                ? (fm.enumerator(atPath: path)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
                    .map { (path as NSString).appendingPathComponent($0) }
                : [path]
            for f in files {
                let a = try? fm.attributesOfItem(atPath: f)
                let size = (a?[.size] as? NSNumber)?.int64Value ?? -1
                let mtime = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
                out.append("\(f) \(size) \(mtime)")
            }
        }
        return out
    }
}
