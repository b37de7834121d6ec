/// JSON strings as text: decoding escapes, comparing names.
public enum JSONText {
    /// Whether the string at `name` reads as `key` once its escapes are decoded.
    public static func matches(_ name: JSONStringRange, _ key: String, in bytes: UnsafeRawBufferPointer) -> Bool {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[name.range])
        guard name.escaped else {
            // Lengths first: most names compared are not the one looked for, and differ in length.
            let key = key.utf8
            guard raw.count == key.count else { return false }
            // Byte by byte over the contiguous bytes: the generic `elementsEqual` cost about 400 instructions a name.
            return key.withContiguousStorageIfAvailable { key in
                for index in 0..<key.count where raw[index] != key[index] { return false }
                return true
            } ?? raw.elementsEqual(key)
        }
        return decode(raw).map { $0.utf8.elementsEqual(key.utf8) } ?? false
    }

    /// The text of the string value at `value` (quotes included); nil when it is not a valid string.
    public static func decodeString(value: Range<Int>, in bytes: UnsafeRawBufferPointer) -> String? {
        var scanner = JSONScanner(bytes, range: value)
        scanner.skipWhitespace()
        guard let string = try? scanner.readString() else { return nil }
        scanner.skipWhitespace()
        guard scanner.index == value.upperBound else { return nil }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[string.range])
        return string.escaped ? decode(raw) : String(validating: raw, as: UTF8.self)
    }

    /// The text of a string's bytes between its quotes, escapes decoded (`\u002d` is `-`, surrogate pairs
    /// joined); nil for a bad escape, a lone surrogate or invalid UTF-8.
    public static func decode(_ raw: UnsafeRawBufferPointer) -> String? {
        var output: [UInt8] = []
        output.reserveCapacity(raw.count)
        var index = 0
        while index < raw.count {
            let byte = raw[index]
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                index += 1
                continue
            }
            guard index + 1 < raw.count else { return nil }
            let escape = raw[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hex4(raw, at: index) else { return nil }
                index += 4
                if (0xD800..<0xDC00).contains(scalar) {
                    guard index + 6 <= raw.count, raw[index] == UInt8(ascii: "\\"), raw[index + 1] == UInt8(ascii: "u"),
                        let low = hex4(raw, at: index + 2), (0xDC00..<0xE000).contains(low)
                    else { return nil }
                    index += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let unicode = Unicode.Scalar(scalar) else { return nil }
                output.append(contentsOf: UTF8.encode(unicode)!)
            default:
                return nil
            }
        }
        return String(validating: output, as: UTF8.self)
    }

    private static func hex4(_ raw: UnsafeRawBufferPointer, at index: Int) -> UInt32? {
        guard index + 4 <= raw.count else { return nil }
        var value: UInt32 = 0
        for byte in raw[index..<index + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}
