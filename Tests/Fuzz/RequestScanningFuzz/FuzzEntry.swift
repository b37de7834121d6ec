import RequestScanning

#if FUZZING
/// libFuzzer's entry point: one input, every scanner, invariants checked with `precondition`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    ScannerInvariants.check(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
/// Built without libFuzzer: runs each file named on the command line through the same checks (a crash
/// file from `make fuzz` replays under the debugger this way).
@main
struct FuzzReplay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let bytes = FileBytes.read(path) else {
                print("cannot read \(path)")
                continue
            }
            bytes.withUnsafeBytes { ScannerInvariants.check($0) }
            print("ok \(path)")
        }
    }
}
#endif
