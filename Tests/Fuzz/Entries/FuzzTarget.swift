/// The fuzz targets, by the name `scripts/fuzz`, the corpus folders (`Tests/Fuzz/corpus/<name>/`)
/// and the regression test use.
///
/// Every entry takes arbitrary bytes and must return normally: a trap, a sanitizer report or a
/// failed harness check (`fuzzCheck`) is a finding.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// Line framing (``LineReader``) and JSON decoding, then the engine's in-memory evaluation.
    case decoder
    /// One rule condition: lexer, parser, compiler, evaluator.
    case condition
    /// A whole rule file (YAML): loader, compiler, embedded tests.
    case rulefile
    /// The engine's YAML config file and the sinks it describes.
    case config
    /// A baseline snapshot file (`baseline import`).
    case snapshot

    /// Runs this target's entry on `data`.
    public func run(_ data: UnsafeRawBufferPointer) {
        switch self {
        case .decoder: fuzzDecoder(data)
        case .condition: fuzzCondition(data)
        case .rulefile: fuzzRuleFile(data)
        case .config: fuzzConfig(data)
        case .snapshot: fuzzSnapshot(data)
        }
    }

    /// Runs this target's entry on `bytes`.
    public func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { run($0) }
    }
}

/// A harness invariant: when it does not hold, the engine did something wrong with this input.
/// Traps (so libFuzzer saves the input) with the message.
@inline(__always)
func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
               file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("fuzz check failed: \(message())", file: file, line: line) }
}

/// The input as text, the way the engine reads files (`String(data:encoding: .utf8)` rejects
/// invalid UTF-8; the harness repairs it instead so the text path still runs).
func fuzzText(_ data: UnsafeRawBufferPointer) -> String {
    String(decoding: data, as: UTF8.self)
}
