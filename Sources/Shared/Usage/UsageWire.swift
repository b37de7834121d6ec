/// The stats-socket framing: each row is one line of tab-separated fields ending in `\\n`, led by a
/// version tag. Hand-written because every request sends one: `JSONEncoder`/`JSONDecoder` cost more per
/// row than the rest of a request's handling. Absent values are empty fields; text fields escape `\\`,
/// tab, newline and carriage return.
public enum UsageWire {
    /// Largest line the collector accepts.
    public static let maximumLineBytes = 64 * 1024
    /// Text fields are cut to this many bytes (at a character boundary), so that even a request with an
    /// 80 KB path makes a line the collector takes: 4 text fields, escaped, stay under `maximumLineBytes`.
    public static let maximumFieldBytes = 4096
    private static let version = Array("u1".utf8)
    private static let fieldCount = 17

    /// `row` as one newline-terminated line.
    public static func encode(_ row: UsageRow) -> [UInt8] {
        var line: [UInt8] = version
        line.reserveCapacity(160 + row.path.utf8.count + (row.model?.utf8.count ?? 0))
        func field(_ text: String?) {
            line.append(UInt8(ascii: "\t"))
            guard let text else { return }
            var bytes = text.utf8[...]
            if bytes.count > maximumFieldBytes {
                var end = bytes.index(bytes.startIndex, offsetBy: maximumFieldBytes)
                while end > bytes.startIndex, bytes[end] & 0xC0 == 0x80 { end = bytes.index(before: end) }
                bytes = bytes[..<end]
            }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\\"): line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case UInt8(ascii: "\t"): line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case UInt8(ascii: "\n"): line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case UInt8(ascii: "\r"): line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                default: line.append(byte)
                }
            }
        }
        func number<N: LosslessStringConvertible>(_ value: N?) {
            line.append(UInt8(ascii: "\t"))
            if let value { line.append(contentsOf: value.description.utf8) }
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
        number(row.latencyMs)
        number(row.ttfbMs)
        number(row.streamed ? 1 : 0)
        number(row.promptTokens)
        number(row.completionTokens)
        number(row.totalTokens)
        field(row.error)
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// The row in one line (without its newline), or nil when it is not a valid row.
    public static func decode(_ line: UnsafeRawBufferPointer) -> UsageRow? {
        // Field boundaries first; numbers are then read straight from the bytes, text fields unescaped.
        var bounds: [Range<Int>] = []
        bounds.reserveCapacity(fieldCount)
        var start = 0
        for index in 0..<line.count where line[index] == UInt8(ascii: "\t") {
            bounds.append(start..<index)
            start = index + 1
        }
        bounds.append(start..<line.count)
        guard bounds.count == fieldCount, line[bounds[0]].elementsEqual(version) else { return nil }
        func text(_ field: Int) -> String? {
            let range = bounds[field]
            guard !range.isEmpty else { return nil }
            let bytes = line[range]
            guard bytes.contains(UInt8(ascii: "\\")) else { return String(decoding: bytes, as: UTF8.self) }
            var unescaped: [UInt8] = []
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
            var value: Int64 = 0
            var negative = false
            for (offset, byte) in line[range].enumerated() {
                if offset == 0, byte == UInt8(ascii: "-") {
                    negative = true
                    continue
                }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                let (product, overflow) = value.multipliedReportingOverflow(by: 10)
                guard !overflow else { return nil }
                value = product + Int64(byte - UInt8(ascii: "0"))
            }
            return .some(negative ? -value : value)
        }
        func double(_ field: Int) -> Double?? {
            guard let text = text(field) else { return .some(nil) }
            return Double(text).map { .some($0) } ?? nil
        }
        guard let requestID = text(1), let timestamp = integer(2) ?? nil, let worker = integer(3) ?? nil,
            let keyID = integer(4), let tokenID = integer(5), let method = text(7), let path = text(8),
            let status = integer(9) ?? nil, let latency = double(10) ?? nil, let ttfb = double(11),
            let prompt = integer(13), let completion = integer(14), let total = integer(15)
        else { return nil }
        return UsageRow(
            requestID: requestID, timestamp: timestamp, worker: Int(worker), keyID: keyID, tokenID: tokenID,
            model: text(6), method: method, path: path, status: Int(status), latencyMs: latency, ttfbMs: ttfb,
            streamed: line[bounds[12]].elementsEqual([UInt8(ascii: "1")]), promptTokens: prompt.map(Int.init),
            completionTokens: completion.map(Int.init), totalTokens: total.map(Int.init), error: text(16))
    }

    /// The row in one line held in an array (tests and tools).
    public static func decode(_ line: [UInt8]) -> UsageRow? {
        line.withUnsafeBytes { decode($0) }
    }
}
