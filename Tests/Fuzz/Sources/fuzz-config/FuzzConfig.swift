import IWDetectFuzzEntries

/// libFuzzer's entry point (libFuzzer provides `main`): one input to `FuzzTarget.config`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.config.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}
