/// A Unix-millisecond time as the text GRDB stores a `Date` as (`yyyy-MM-dd HH:mm:ss.SSS`, UTC), made
/// without Foundation: `DateFormatter` (ICU) cost the collector about 9 % of its time, one call per chat-history
/// row.
enum SQLiteDateText {
    /// `milliseconds` since 1970 in UTC, e.g. `2023-11-14 22:13:20.123`.
    static func format(milliseconds: Int64) -> String {
        withText(milliseconds: milliseconds) { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with the 23 bytes of `format(milliseconds:)`, made on the stack: a chat-history row binds
    /// them straight to its statement, with no array or string made per row.
    static func withText<Result>(milliseconds: Int64, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        let (days, dayMilliseconds) = divide(milliseconds, 86_400_000)
        let (year, month, day) = civil(days: days)
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &scratch) { bytes in
            let text = UnsafeMutableRawBufferPointer(rebasing: bytes[..<23])
            func put(_ value: Int64, at offset: Int, digits: Int) {
                var rest = value
                for index in stride(from: offset + digits - 1, through: offset, by: -1) {
                    text[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
            }
            put(year, at: 0, digits: 4)
            text[4] = UInt8(ascii: "-")
            put(month, at: 5, digits: 2)
            text[7] = UInt8(ascii: "-")
            put(day, at: 8, digits: 2)
            text[10] = UInt8(ascii: " ")
            put(dayMilliseconds / 3_600_000, at: 11, digits: 2)
            text[13] = UInt8(ascii: ":")
            put(dayMilliseconds / 60_000 % 60, at: 14, digits: 2)
            text[16] = UInt8(ascii: ":")
            put(dayMilliseconds / 1000 % 60, at: 17, digits: 2)
            text[19] = UInt8(ascii: ".")
            put(dayMilliseconds % 1000, at: 20, digits: 3)
            return body(UnsafeRawBufferPointer(text))
        }
    }

    /// Floor division with a non-negative remainder (times before 1970 stay correct).
    private static func divide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor - (value % divisor < 0 ? 1 : 0)
        return (quotient, value - quotient * divisor)
    }

    /// Year, month and day of `days` since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's
    /// `civil_from_days`).
    private static func civil(days: Int64) -> (Int64, Int64, Int64) {
        let shifted = days + 719_468
        let era = divide(shifted, 146_097).0
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
