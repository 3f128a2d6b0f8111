import IWDetectFuzzEntries

/// libFuzzer's entry point (libFuzzer provides `main`): one input to `FuzzTarget.snapshot`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.snapshot.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}
