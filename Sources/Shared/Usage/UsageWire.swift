/// The stats-socket protocol.
///
/// Worker → collector: one row per line, tab-separated fields led by a version tag, ending in `\n`.
/// `u3` rows (written now) are `u2` rows with four more fields at the end: cached, reasoning, audio input and
/// audio output tokens. `u2` rows (an older binary's spool) still decode, their four counts absent.
/// A line led by `r1` is a `RefusedCount` instead (`r1 source minute reason count`): requests refused
/// before a token was known, counted per minute rather than sent one row each.
/// Hand-written because every request sends one: `JSONEncoder`/`JSONDecoder` cost more per row than the
/// rest of a request's handling. Absent values are empty fields; text fields escape `\\`, tab, newline
/// and carriage return, so a row is always exactly one line.
///
/// Collector → worker: `a<N>\n` once the first N lines received on that connection are committed (or
/// were malformed and dropped), so the worker can forget them; lines are counted from 1 per connection.
///
/// A connection whose first line is `metrics` gets the collector's metrics (Prometheus text) and is closed.
public enum UsageWire {
    /// Largest line the collector accepts: every text field at its cut, escaped, fits.
    public static let maximumLineBytes = 5 * 1024 * 1024
    /// Text fields are cut to this many bytes (at a character boundary), so that even a request with an
    /// 80 KB path makes a line the collector takes.
    public static let maximumFieldBytes = 4096
    /// The chat-history texts are cut to this many bytes at most (the configured size is smaller or equal).
    public static let maximumChatFieldBytes = 1024 * 1024
    /// The line that asks the collector for its metrics.
    public static let metricsRequest = "metrics"
    private static let version = Array("u3".utf8)
    private static let version2 = Array("u2".utf8)
    private static let refusedVersion = Array("r1".utf8)
    /// Longest source name a refused-count line may carry.
    private static let maximumSourceBytes = 64
    private static let fieldCount = 25
    /// Fields of a `u2` row: `u3` less the four token details.
    private static let version2FieldCount = 21

    /// `row` as one newline-terminated line.
    public static func encode(_ row: UsageRow) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(
            160 + row.path.utf8.count + (row.model?.utf8.count ?? 0) + (row.chatRequest?.utf8.count ?? 0)
                + (row.chatResponse?.utf8.count ?? 0))
        encode(row, into: &line)
        return line
    }

    /// Appends `row` as one newline-terminated line to `line`: a worker gathers the rows of one event-loop
    /// tick in one buffer, with no allocation per row once the buffer has grown to a tick's size.
    public static func encode(_ row: UsageRow, into line: inout [UInt8]) {
        line.append(contentsOf: version)
        func field(_ text: String?, limit: Int = maximumFieldBytes) {
            line.append(UInt8(ascii: "\t"))
            guard var text else { return }
            // The usual field (within the limit, nothing to escape) is copied from the string's own bytes in one
            // go: going through `prefix`'s view cost about 900 instructions a field, 6,300 a row.
            let copied = text.withUTF8 { bytes in
                guard bytes.count <= limit,
                    !bytes.contains(where: { $0 <= UInt8(ascii: "\r") || $0 == UInt8(ascii: "\\") })
                else { return false }
                line.append(contentsOf: bytes)
                return true
            }
            if copied { return }
            let bytes = prefix(text, bytes: limit)
            // A field cut at the limit, or one with bytes to escape: copied in one go when it has none.
            guard bytes.contains(where: { $0 <= UInt8(ascii: "\r") || $0 == UInt8(ascii: "\\") }) else {
                line.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                let escaped: UInt8
                switch byte {
                case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
                case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
                case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
                case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
                default:
                    line.append(byte)
                    continue
                }
                line.append(UInt8(ascii: "\\"))
                line.append(escaped)
            }
        }
        func number<N: BinaryInteger>(_ value: N?) {
            line.append(UInt8(ascii: "\t"))
            if let value { appendDecimal(Int64(value), to: &line) }
        }
        func real(_ value: Double?) {
            line.append(UInt8(ascii: "\t"))
            if let value { appendMilliseconds(value, to: &line) }
        }
        field(row.requestID)
        number(row.timestamp)
        number(row.worker)
        number(row.keyID)
        number(row.tokenID)
        field(row.model)
        field(row.method)
        field(row.path)
        number(row.status)
        real(row.latencyMs)
        real(row.ttfbMs)
        number(row.streamed ? 1 : 0)
        number(row.promptTokens)
        number(row.completionTokens)
        number(row.totalTokens)
        field(row.error)
        number(row.tokensEstimated ? 1 : 0)
        number(row.keepsChatHistory ? 1 : 0)
        field(row.chatRequest, limit: maximumChatFieldBytes)
        field(row.chatResponse, limit: maximumChatFieldBytes)
        number(row.cachedTokens)
        number(row.reasoningTokens)
        number(row.audioInputTokens)
        number(row.audioOutputTokens)
        line.append(UInt8(ascii: "\n"))
    }

    /// Appends a time in milliseconds to the microsecond, `ms.uuu` (`12.345`): the clock's nanoseconds are noise
    /// for a request's latency, and the shortest exact text of the `Double` (`0.18389300000000003`) cost a
    /// `String` and about 1,500 instructions a value to write, and the collector its slow parse to read.
    /// Values too large for that (or not finite) are written as Swift prints them.
    static func appendMilliseconds(_ value: Double, to line: inout [UInt8]) {
        let micros = (value * 1000).rounded()
        guard micros.isFinite, micros.magnitude < 1e15 else {
            line.append(contentsOf: value.description.utf8)
            return
        }
        let whole = Int64(micros)
        if whole < 0 { line.append(UInt8(ascii: "-")) }
        appendDecimal(Int64(whole.magnitude / 1000), to: &line)
        let fraction = Int(whole.magnitude % 1000)
        line.append(UInt8(ascii: "."))
        line.append(UInt8(ascii: "0") + UInt8(fraction / 100))
        line.append(UInt8(ascii: "0") + UInt8(fraction / 10 % 10))
        line.append(UInt8(ascii: "0") + UInt8(fraction % 10))
    }

    /// Appends `value` in decimal without making a `String` first.
    private static func appendDecimal(_ value: Int64, to line: inout [UInt8]) {
        // Most numbers in a row (worker, flags, many counts) are one digit.
        if value >= 0, value < 10 {
            line.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        if value < 0 { line.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        // 24 bytes of scratch: room for the 20 digits of the largest magnitude.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { scratch in
            var index = scratch.count
            repeat {
                index -= 1
                scratch[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            // As a plain buffer, the append is one copy (a slice of one took the element-by-element path).
            line.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[index...]))
        }
    }

    /// `count` as one newline-terminated line.
    public static func encode(_ count: RefusedCount) -> [UInt8] {
        var line = refusedVersion
        line.reserveCapacity(64 + count.source.utf8.count)
        for field in [
            String(decoding: prefix(count.source, bytes: maximumSourceBytes), as: UTF8.self), String(count.minute),
            count.reason.rawValue, String(count.count),
        ] {
            line.append(UInt8(ascii: "\t"))
            // Sources are made of letters, digits and dashes: nothing to escape, but no separator gets in.
            line.append(contentsOf: field.utf8.filter { $0 != UInt8(ascii: "\t") && $0 != UInt8(ascii: "\n") })
        }
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// What one line carries.
    public enum Record: Sendable, Equatable {
        /// A proxied request's usage row.
        case usage(UsageRow)
        /// Requests refused before a token was known, counted for one minute.
        case refused(RefusedCount)
        /// An object created or deleted through the gateway (`UsageWire+Objects`).
        case object(ObjectChange)
    }

    /// The record in one line (without its newline), or nil when it is neither a valid row nor a valid count.
    public static func decodeRecord(_ line: UnsafeRawBufferPointer) -> Record? {
        if line.starts(with: objectVersion) { return decodeObjectChange(line).map(Record.object) }
        guard line.starts(with: refusedVersion) else { return decode(line).map(Record.usage) }
        let fields = line.split(separator: UInt8(ascii: "\t"), omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].elementsEqual(refusedVersion), !fields[1].isEmpty,
            fields[1].count <= maximumSourceBytes, let minute = parseInteger(fields[2]),
            let reason = RefusalReason(rawValue: String(decoding: fields[3], as: UTF8.self)),
            let count = parseInteger(fields[4]), count >= 0
        else { return nil }
        return .refused(
            RefusedCount(
                source: String(decoding: fields[1], as: UTF8.self), minute: minute, reason: reason, count: count))
    }

    /// The record in one line held in an array (tests and tools).
    public static func decodeRecord(_ line: [UInt8]) -> Record? {
        line.withUnsafeBytes { decodeRecord($0) }
    }

    /// The UTF-8 bytes of `text`, cut to at most `bytes` at a character boundary.
    public static func prefix(_ text: String, bytes: Int) -> Substring.UTF8View {
        let all = text.utf8[...]
        guard all.count > bytes else { return all }
        var end = all.index(all.startIndex, offsetBy: bytes)
        while end > all.startIndex, all[end] & 0xC0 == 0x80 { end = all.index(before: end) }
        return all[..<end]
    }

    /// `text` cut to at most `bytes` UTF-8 bytes at a character boundary.
    public static func truncated(_ text: String, bytes: Int) -> String {
        text.utf8.count <= bytes ? text : String(Substring(prefix(text, bytes: bytes)))
    }

    /// The row in one line (without its newline), or nil when it is not a valid row.
    public static func decode(_ line: UnsafeRawBufferPointer) -> UsageRow? {
        // The field boundaries live on the stack: one heap array per row was a tenth of decoding's cost.
        withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: fieldCount) { bounds in
            var count = 0
            var start = 0
            for index in 0..<line.count where line[index] == UInt8(ascii: "\t") {
                guard count < fieldCount - 1 else { return nil }
                bounds.initializeElement(at: count, to: start..<index)
                count += 1
                start = index + 1
            }
            bounds.initializeElement(at: count, to: start..<line.count)
            count += 1
            guard count == fieldCount || count == version2FieldCount else { return nil }
            return decode(line, fields: UnsafeBufferPointer(start: bounds.baseAddress, count: count))
        }
    }

    /// The row in `line`, whose fields (as many as its version has) lie at `bounds`.
    private static func decode(
        _ line: UnsafeRawBufferPointer, fields bounds: UnsafeBufferPointer<Range<Int>>
    )
        -> UsageRow?
    {
        // Numbers are read straight from the bytes, text fields unescaped.
        let current = bounds.count == fieldCount
        guard line[bounds[0]].elementsEqual(current ? version : version2) else { return nil }
        func text(_ field: Int) -> String? {
            let range = bounds[field]
            guard !range.isEmpty else { return nil }
            let bytes = line[range]
            guard containsBackslash(UnsafeRawBufferPointer(rebasing: bytes)) else {
                return String(decoding: bytes, as: UTF8.self)
            }
            var unescaped: [UInt8] = []
            unescaped.reserveCapacity(bytes.count)
            var escaping = false
            for byte in bytes {
                if escaping {
                    switch byte {
                    case UInt8(ascii: "t"): unescaped.append(UInt8(ascii: "\t"))
                    case UInt8(ascii: "n"): unescaped.append(UInt8(ascii: "\n"))
                    case UInt8(ascii: "r"): unescaped.append(UInt8(ascii: "\r"))
                    default: unescaped.append(byte)
                    }
                    escaping = false
                } else if byte == UInt8(ascii: "\\") {
                    escaping = true
                } else {
                    unescaped.append(byte)
                }
            }
            return String(decoding: unescaped, as: UTF8.self)
        }
        /// nil: malformed; .some(nil): absent.
        func integer(_ field: Int) -> Int64?? {
            let range = bounds[field]
            guard !range.isEmpty else { return .some(nil) }
            return parseInteger(UnsafeRawBufferPointer(rebasing: line[range])).map { .some($0) } ?? nil
        }
        func double(_ field: Int) -> Double?? {
            let range = bounds[field]
            guard !range.isEmpty else { return .some(nil) }
            if let value = parsePlainDecimal(line[range]) { return .some(value) }
            guard let text = text(field) else { return .some(nil) }
            return Double(text).map { .some($0) } ?? nil
        }
        func flag(_ field: Int) -> Bool { line[bounds[field]].elementsEqual([UInt8(ascii: "1")]) }
        guard let requestID = text(1), let timestamp = integer(2) ?? nil, let worker = integer(3) ?? nil,
            let keyID = integer(4), let tokenID = integer(5), let method = text(7), let path = text(8),
            let status = integer(9) ?? nil, let latency = double(10) ?? nil, let ttfb = double(11),
            let prompt = integer(13), let completion = integer(14), let total = integer(15)
        else { return nil }
        /// A `u3` row's detail count at `field`: nil when malformed; absent in a `u2` row.
        func detail(_ field: Int) -> Int64?? { current ? integer(field) : .some(nil) }
        guard let cached = detail(21), let reasoning = detail(22), let audioInput = detail(23),
            let audioOutput = detail(24)
        else { return nil }
        return UsageRow(
            requestID: requestID, timestamp: timestamp, worker: Int(worker), keyID: keyID, tokenID: tokenID,
            model: text(6), method: method, path: path, status: Int(status), latencyMs: latency, ttfbMs: ttfb,
            streamed: flag(12), promptTokens: prompt.map(Int.init), completionTokens: completion.map(Int.init),
            totalTokens: total.map(Int.init), error: text(16), tokensEstimated: flag(17), keepsChatHistory: flag(18),
            chatRequest: text(19), chatResponse: text(20), cachedTokens: cached.map(Int.init),
            reasoningTokens: reasoning.map(Int.init), audioInputTokens: audioInput.map(Int.init),
            audioOutputTokens: audioOutput.map(Int.init))
    }

    /// The row in one line held in an array (tests and tools).
    public static func decode(_ line: [UInt8]) -> UsageRow? {
        line.withUnsafeBytes { decode($0) }
    }

    /// The acknowledgement of the first `lines` lines of a connection.
    public static func acknowledgement(_ lines: UInt64) -> [UInt8] {
        Array("a\(lines)\n".utf8)
    }

    /// The line count of one acknowledgement line (without its newline), or nil when it is not one.
    public static func decodeAcknowledgement<Bytes: Collection<UInt8>>(_ line: Bytes) -> UInt64? {
        guard line.first == UInt8(ascii: "a"), let value = parseInteger(line.dropFirst()), value >= 0 else {
            return nil
        }
        return UInt64(value)
    }

    /// `bytes` read as `digits.digits` or `digits` without making a `String`, when the digits make an integer
    /// below 2^53 and there are at most 22 after the point: that integer and the power of ten are then exact
    /// doubles, and their quotient is the correctly rounded value, as `Double(String)` gives it (Clinger's fast
    /// path). nil for anything else (the caller parses it the general way); how workers write latencies.
    static func parsePlainDecimal(_ bytes: Slice<UnsafeRawBufferPointer>) -> Double? {
        guard let first = bytes.first, let last = bytes.last, first != UInt8(ascii: "."), last != UInt8(ascii: "."),
            bytes.count <= 24
        else { return nil }
        var mantissa: Int64 = 0
        var fractionDigits = -1
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard fractionDigits < 0 else { return nil }
                fractionDigits = 0
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            mantissa = mantissa * 10 + Int64(byte - UInt8(ascii: "0"))
            guard mantissa < 1 << 53 else { return nil }
            if fractionDigits >= 0 { fractionDigits += 1 }
        }
        guard fractionDigits <= 22 else { return nil }
        return fractionDigits > 0 ? Double(mantissa) / exactPowersOfTen[fractionDigits] : Double(mantissa)
    }

    /// 10^0 … 10^22, each exactly a `Double`.
    private static let exactPowersOfTen: [Double] = (0...22).map { (0..<$0).reduce(1.0) { value, _ in value * 10 } }

    /// Whether `bytes` hold a backslash: a plain loop over the buffer (`contains` on a slice of it cost about
    /// five times as much).
    private static func containsBackslash(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes where byte == UInt8(ascii: "\\") { return true }
        return false
    }

    /// A decimal integer with an optional leading minus, or nil when malformed or out of range.
    /// Read over every numeric field of every row: no enumeration, and specialized for plain buffers.
    private static func parseInteger<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int64? {
        guard let first = bytes.first else { return nil }
        let negative = first == UInt8(ascii: "-") && bytes.count > 1
        var value: Int64 = 0
        for byte in negative ? bytes.dropFirst() : bytes[...] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            let (sum, overflowed) = product.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflowed else { return nil }
            value = sum
        }
        return negative ? -value : value
    }
}
