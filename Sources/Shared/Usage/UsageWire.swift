/// The stats-socket framing: each row is one line of tab-separated fields ending in `\\n`, led by a
/// version tag. Hand-written because every request sends one: `JSONEncoder`/`JSONDecoder` cost more per
/// row than the rest of a request's handling. Absent values are empty fields; text fields escape `\\`,
/// tab, newline and carriage return.
public enum UsageWire {
    /// Largest line the collector accepts.
    public static let maximumLineBytes = 64 * 1024
    private static let version = Array("u1".utf8)
    private static let fieldCount = 17

    /// `row` as one newline-terminated line.
    public static func encode(_ row: UsageRow) -> [UInt8] {
        var line: [UInt8] = version
        line.reserveCapacity(160 + row.path.utf8.count + (row.model?.utf8.count ?? 0))
        func field(_ text: String?) {
            line.append(UInt8(ascii: "\t"))
            guard let text else { return }
            for byte in text.utf8 {
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
    public static func decode(_ line: some Collection<UInt8>) -> UsageRow? {
        var fields: [String?] = []
        fields.reserveCapacity(fieldCount)
        var current: [UInt8] = []
        var escaping = false
        var isFirst = true
        var tagOK = false
        func close() {
            if isFirst {
                tagOK = current == version
                isFirst = false
            } else {
                fields.append(current.isEmpty ? nil : String(decoding: current, as: UTF8.self))
            }
            current.removeAll(keepingCapacity: true)
        }
        for byte in line {
            if escaping {
                switch byte {
                case UInt8(ascii: "t"): current.append(UInt8(ascii: "\t"))
                case UInt8(ascii: "n"): current.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "r"): current.append(UInt8(ascii: "\r"))
                default: current.append(byte)
                }
                escaping = false
            } else if byte == UInt8(ascii: "\\") {
                escaping = true
            } else if byte == UInt8(ascii: "\t") {
                close()
            } else {
                current.append(byte)
            }
        }
        close()
        guard tagOK, fields.count == fieldCount - 1 else { return nil }
        guard let requestID = fields[0], let timestamp = fields[1].flatMap(Int64.init),
            let worker = fields[2].flatMap(Int.init), let method = fields[6], let path = fields[7],
            let status = fields[8].flatMap(Int.init), let latency = fields[9].flatMap(Double.init)
        else { return nil }
        func optional<T: LosslessStringConvertible>(_ index: Int, _: T.Type) -> T?? {
            guard let text = fields[index] else { return .some(nil) }
            guard let value = T(text) else { return nil }
            return .some(value)
        }
        guard let keyID = optional(3, Int64.self), let tokenID = optional(4, Int64.self),
            let ttfb = optional(10, Double.self), let prompt = optional(12, Int.self),
            let completion = optional(13, Int.self), let total = optional(14, Int.self)
        else { return nil }
        return UsageRow(
            requestID: requestID, timestamp: timestamp, worker: worker, keyID: keyID, tokenID: tokenID,
            model: fields[5], method: method, path: path, status: status, latencyMs: latency, ttfbMs: ttfb,
            streamed: fields[11] == "1", promptTokens: prompt, completionTokens: completion, totalTokens: total,
            error: fields[15])
    }
}
