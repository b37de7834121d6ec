extension StringProtocol {
    /// True when the string equals `lowercase` (given in lowercase ASCII) ignoring ASCII case, without
    /// allocating: header names and media types are compared on every request.
    package func equalsIgnoringASCIICase(_ lowercase: String) -> Bool {
        var other = lowercase.utf8.makeIterator()
        for byte in utf8 {
            guard let expected = other.next(), byte.asciiLowercased == expected else { return false }
        }
        return other.next() == nil
    }

    /// True when the string starts with `lowercase` (given in lowercase ASCII), ignoring ASCII case.
    package func hasPrefixIgnoringASCIICase(_ lowercase: String) -> Bool {
        var mine = utf8.makeIterator()
        for expected in lowercase.utf8 {
            guard let byte = mine.next(), byte.asciiLowercased == expected else { return false }
        }
        return true
    }

    /// True when the string contains `lowercase` (given in lowercase ASCII), ignoring ASCII case.
    package func containsIgnoringASCIICase(_ lowercase: String) -> Bool {
        let needle = Array(lowercase.utf8)
        let haystack = Array(utf8)
        guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
        for start in 0...(haystack.count - needle.count) {
            var index = 0
            while index < needle.count, haystack[start + index].asciiLowercased == needle[index] { index += 1 }
            if index == needle.count { return true }
        }
        return false
    }
}

extension UInt8 {
    /// The byte with ASCII `A`–`Z` mapped to `a`–`z`; every other byte as it is.
    package var asciiLowercased: UInt8 {
        self >= UInt8(ascii: "A") && self <= UInt8(ascii: "Z") ? self | 0x20 : self
    }
}
