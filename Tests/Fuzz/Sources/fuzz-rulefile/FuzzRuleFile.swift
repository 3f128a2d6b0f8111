import IWDetectFuzzEntries

/// libFuzzer's entry point (libFuzzer provides `main`): one input to `FuzzTarget.rulefile`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.rulefile.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}
