import RequestScanning

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if FUZZING
/// libFuzzer's entry point: one input, every scanner, invariants checked with `precondition`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    ScannerInvariants.check(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

// libFuzzer's driver, called from this executable's own `main`: SwiftPM names an executable's entry point
// after its module and points `main` at it, so libFuzzer's `main` is not the one that runs.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer with the command line's options over `LLVMFuzzerTestOneInput`.
@main
struct FuzzDriver {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzOneInput))
    }
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
