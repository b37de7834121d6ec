/// Header names compared as the proxy's hot path compares them.
enum HeaderName {
    /// Whether `name` is `lowercase` in any ASCII case, comparing bytes in place (the generic case-insensitive
    /// comparison over `String.UTF8View` cost some 1,000 instructions for one `content-length`). Also for values
    /// made of letters and `-`, such as `keep-alive`.
    @inline(__always)
    static func matches(_ name: String, _ lowercase: StaticString) -> Bool {
        guard name.utf8.count == lowercase.utf8CodeUnitCount else { return false }
        var name = name
        return name.withUTF8 { bytes in
            let expected = lowercase.utf8Start
            for index in 0..<bytes.count where bytes[index] | 0x20 != expected[index] { return false }
            return true
        }
    }
}
