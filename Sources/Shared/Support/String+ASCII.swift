// Inlinable: these run on every request from other modules, and unspecialized generic code over
// `StringProtocol` (witness tables, metadata look-ups per call) cost more than the comparisons themselves.
extension StringProtocol {
    /// True when the string equals `lowercase` (given in lowercase ASCII) ignoring ASCII case, without
    /// allocating: header names and media types are compared on every request.
    @inlinable
    package func equalsIgnoringASCIICase(_ lowercase: String) -> Bool {
        var other = lowercase.utf8.makeIterator()
        for byte in utf8 {
            guard let expected = other.next(), byte.asciiLowercased == expected else { return false }
        }
        return other.next() == nil
    }

    /// True when the string starts with `lowercase` (given in lowercase ASCII), ignoring ASCII case.
    @inlinable
    package func hasPrefixIgnoringASCIICase(_ lowercase: String) -> Bool {
        var mine = utf8.makeIterator()
        for expected in lowercase.utf8 {
            guard let byte = mine.next(), byte.asciiLowercased == expected else { return false }
        }
        return true
    }

    /// True when the string contains `lowercase` (given in lowercase ASCII), ignoring ASCII case, without
    /// copying either.
    @inlinable
    package func containsIgnoringASCIICase(_ lowercase: String) -> Bool {
        let needle = lowercase.utf8
        guard let first = needle.first else { return true }
        let haystack = utf8
        var start = haystack.startIndex
        while start != haystack.endIndex {
            if haystack[start].asciiLowercased == first {
                var mine = haystack[start...].makeIterator()
                var matched = true
                for expected in needle {
                    guard let byte = mine.next(), byte.asciiLowercased == expected else {
                        matched = false
                        break
                    }
                }
                if matched { return true }
            }
            haystack.formIndex(after: &start)
        }
        return false
    }
}

extension UInt8 {
    /// The byte with ASCII `A`–`Z` mapped to `a`–`z`; every other byte as it is.
    @inlinable
    package var asciiLowercased: UInt8 {
        self >= UInt8(ascii: "A") && self <= UInt8(ascii: "Z") ? self | 0x20 : self
    }
}
