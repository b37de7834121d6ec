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

    private static func written(_ milliseconds: Double) -> String {
        var line: [UInt8] = []
        UsageWire.appendMilliseconds(milliseconds, to: &line)
        return String(decoding: line, as: UTF8.self)
    }

    @Test("times are written to the microsecond as plain decimals, read back on the fast path to that value")
    func timesToTheMicrosecond() {
        for (value, text) in [
            (0.18389300000000003, "0.184"), (0, "0.000"), (12.5, "12.500"), (0.0004, "0.000"),
            (1234.5678, "1234.568"), (86_400_000.25, "86400000.250"), (-2.5, "-2.500"),
        ] as [(Double, String)] {
            #expect(Self.written(value) == text, "\(value)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let value = Double.random(in: 0..<1e7, using: &generator)
            let text = Self.written(value)
            #expect(Self.plain(text) == (value * 1000).rounded() / 1000, "\(value) as \(text)")
        }
        // Beyond the microsecond's exact range, or not finite: written as Swift prints them, and read back so.
        for value in [1e15, 1e300, Double.infinity] {
            #expect(Self.written(value) == value.description)
        }
    }

    @Test("a row's numbers are written in decimal, one-digit ones and the largest alike, and read back")
    func rowNumbers() throws {
        let row = UsageRow(
            requestID: "r-1", timestamp: Int64.max, worker: 0, keyID: 9, tokenID: -10, model: nil, method: "POST",
            path: "/v1/chat/completions", status: 200, latencyMs: 0.0006, ttfbMs: nil, streamed: true,
            promptTokens: 0, completionTokens: 1_234_567, totalTokens: 1_234_567, error: nil, tokensEstimated: false,
            cachedTokens: 5, reasoningTokens: nil, audioInputTokens: 100, audioOutputTokens: 0)
        let decoded = try #require(UsageWire.decode(Array(UsageWire.encode(row).dropLast())))
        var expected = row
        expected.latencyMs = 0.001
        #expect(decoded == expected)
    }
}
