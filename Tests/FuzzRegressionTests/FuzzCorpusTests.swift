import Foundation
import IWDetectFuzzEntries
import IWDetectTestSupport
import Testing

/// Replays every committed fuzz input (`Tests/Fuzz/corpus/<target>/`, with `regressions/`)
/// through the same entry the fuzzer calls, in the ordinary test build. An input that crashes
/// crashes this test run: that is the point.
@Suite struct FuzzCorpusTests {
    /// Fewer files than this for a target means the corpus went missing.
    static let minimumFiles = 10

    static func files(_ target: FuzzTarget) -> [String] {
        let dir = packageRoot + "/Tests/Fuzz/corpus/" + target.rawValue
        guard let walker = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        for case let relative as String in walker {
            let path = dir + "/" + relative
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
               !(relative as NSString).lastPathComponent.hasPrefix(".") {
                out.append(path)
            }
        }
        return out.sorted()
    }

    @Test(arguments: FuzzTarget.allCases)
    func corpusReplays(_ target: FuzzTarget) async throws {
        let files = Self.files(target)
        #expect(files.count >= Self.minimumFiles, "only \(files.count) corpus files for \(target.rawValue)")
        var replayed = 0
        for path in files {
            let bytes = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
            // On a thread of its own with the main thread's stack size: libFuzzer runs inputs on
            // the main thread, and a test's thread may have a smaller stack.
            await runWithStack(8 << 20) { target.run([UInt8](bytes)) }
            replayed += 1
        }
        #expect(replayed == files.count)
    }
}

/// Runs `body` on a new thread with `stackSize` bytes of stack, and waits for it without holding a
/// thread of the cooperative pool (a blocking wait there would starve other tests).
func runWithStack(_ stackSize: Int, _ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        let thread = Thread {
            body()
            done.resume()
        }
        thread.stackSize = stackSize
        thread.start()
    }
}
