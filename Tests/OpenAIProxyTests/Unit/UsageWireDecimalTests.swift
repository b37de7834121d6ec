import Testing

@testable import Shared

/// Latencies on the stats socket are read without a `String` when they are plain decimals, to the same value.
@Suite("Usage wire decimals")
struct UsageWireDecimalTests {
    private static func plain(_ text: String) -> Double? {
        Array(text.utf8).withUnsafeBytes { UsageWire.parsePlainDecimal($0[...]) }
    }

    @Test("plain decimals read as Double(String) reads them, the rest is left to it")
    func sameAsDoubleFromString() {
        for text in [
            "0", "7", "12.5", "0.1", "0.3", "3.1415926535", "007.25", "123456.789", "9007199254740991",
            "0.0000000000000000000001", "1.7976931348623",
        ] {
            #expect(Self.plain(text) == Double(text), "\(text)")
        }
        for text in [
            "", ".", ".5", "5.", "1.2.3", "-1.5", "1e-05", "inf", "nan", "1 ", " 1", "9007199254740993",
            "0.00000000000000000000001", "0x1p3", "1,5", "99.99999999999999",
            "4503599627370497.5",
        ] {
            #expect(Self.plain(text) == nil, "\(text)")
        }
        // Latencies as workers write them (`Double.description`) come back exactly.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let value = Double.random(in: 0..<100_000, using: &generator)
            for sample in [value, (value * 1000).rounded() / 1000, value / 1e6] {
                let text = sample.description
                #expect((Self.plain(text) ?? Double(text)) == sample, "\(text)")
            }
        }
    }
}
