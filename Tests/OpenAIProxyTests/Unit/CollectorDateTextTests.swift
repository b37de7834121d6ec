import Foundation
import GRDB
import Testing

@testable import StatsCollector

/// The collector's own rendering of a time as GRDB stores a `Date`.
@Suite("Collector date text")
struct CollectorDateTextTests {
    @Test("times render as GRDB renders a Date, before and after 1970, on leap days and at millisecond ends")
    func matchesGRDB() {
        #expect(SQLiteDateText.format(milliseconds: 1_700_000_000_123) == "2023-11-14 22:13:20.123")
        #expect(SQLiteDateText.format(milliseconds: 0) == "1970-01-01 00:00:00.000")
        #expect(SQLiteDateText.format(milliseconds: -1) == "1969-12-31 23:59:59.999")
        #expect(SQLiteDateText.format(milliseconds: 951_782_400_000) == "2000-02-29 00:00:00.000")
        #expect(SQLiteDateText.format(milliseconds: 4_107_542_399_999) == "2100-02-28 23:59:59.999")
        // Exactly representable instants, so that GRDB's DateFormatter sees the same millisecond.
        for milliseconds: Int64 in [0, 86_399_500, 951_868_799_250, 1_709_251_199_875, 1_735_689_600_000] {
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            let expected = String.fromDatabaseValue(date.databaseValue)
            #expect(SQLiteDateText.format(milliseconds: milliseconds) == expected)
        }
    }
}
