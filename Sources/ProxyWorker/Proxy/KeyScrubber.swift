/// Rewrites an upstream error body so that nothing in it names the pool's keys or accounts: every token
/// that looks like an OpenAI key, organization or project id (`sk-…`, `org-…`, `proj_…`, OpenAI's masked
/// `sk-proj-****…wxyz` included) becomes `***`, and every run of 4 or more characters that also occurs in
/// the secret part of the key that served the request becomes `*`s. In a JSON body only string values
/// are rewritten, so its shape stays valid; any other body is rewritten throughout.
enum KeyScrubber {
    /// `body` rewritten, or nil when nothing in it needed to change.
    static func scrubbed(_ body: [UInt8], servingKey: String?) -> [UInt8]? {
        guard !body.isEmpty else { return nil }
        let scrubbable = scrubbableBytes(body)
        var replaced = [Bool](repeating: false, count: body.count)
        // Start and end of each id token, replaced by `***` as a whole.
        var tokens: [Range<Int>] = []
        var index = 0
        while index < body.count {
            if scrubbable[index], let end = idToken(in: body, at: index) {
                tokens.append(index..<end)
                index = end
            } else {
                index += 1
            }
        }
        var fragments = false
        if let secret = servingKey.map(secretPart), secret.count >= 4 {
            var grams = Set<UInt32>()
            for start in 0...(secret.count - 4) { grams.insert(gram(secret, start)) }
            if body.count >= 4 {
                for start in 0...(body.count - 4)
                where scrubbable[start] && scrubbable[start + 3] && grams.contains(gram(body, start)) {
                    for offset in start..<(start + 4) { replaced[offset] = true }
                    fragments = true
                }
            }
        }
        guard !tokens.isEmpty || fragments else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(body.count)
        var tokenIndex = 0
        index = 0
        while index < body.count {
            if tokenIndex < tokens.count, tokens[tokenIndex].lowerBound == index {
                output.append(contentsOf: redaction)
                index = tokens[tokenIndex].upperBound
                tokenIndex += 1
                continue
            }
            output.append(replaced[index] ? UInt8(ascii: "*") : body[index])
            index += 1
        }
        return output
    }

    private static let redaction = Array("***".utf8)
    private static let ellipsis = Array("…".utf8)
    private static let prefixes = [Array("sk-".utf8), Array("org-".utf8), Array("proj_".utf8)]

    /// The end of an id token (`sk-…`, `org-…`, `proj_…` and at least one more character) starting at
    /// `start`, which must not continue a word.
    private static func idToken(in bytes: [UInt8], at start: Int) -> Int? {
        if start > 0, isTokenByte(bytes[start - 1]) { return nil }
        for prefix in prefixes where hasPrefix(bytes, prefix, at: start) {
            var end = start + prefix.count
            while end < bytes.count {
                if isTokenByte(bytes[end]) {
                    end += 1
                } else if bytes[end] == UInt8(ascii: ".") || hasPrefix(bytes, ellipsis, at: end) {
                    // `sk-abc...wxyz`, `sk-abc…wxyz`: elisions inside a token, not the full stop after it.
                    var after = end
                    while after < bytes.count {
                        if bytes[after] == UInt8(ascii: ".") {
                            after += 1
                        } else if hasPrefix(bytes, ellipsis, at: after) {
                            after += ellipsis.count
                        } else {
                            break
                        }
                    }
                    guard after < bytes.count, isTokenByte(bytes[after]) else { break }
                    end = after
                } else {
                    break
                }
            }
            return end > start + prefix.count ? end : nil
        }
        return nil
    }

    private static func hasPrefix(_ bytes: [UInt8], _ prefix: [UInt8], at start: Int) -> Bool {
        guard start + prefix.count <= bytes.count else { return false }
        for offset in 0..<prefix.count where bytes[start + offset] != prefix[offset] { return false }
        return true
    }

    /// Letters, digits, `-`, `_` and the `*` of masked keys.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "*"):
            return true
        default:
            return false
        }
    }

    /// The key without OpenAI's well-known prefixes (`sk-`, `sk-proj-` …): those are in every key and in
    /// ordinary words ("project"), and name nothing.
    static func secretPart(_ key: String) -> [UInt8] {
        var rest = Substring(key)
        if rest.hasPrefix("sk-") { rest = rest.dropFirst(3) }
        for kind in ["proj-", "svcacct-", "admin-", "None-"] where rest.hasPrefix(kind) {
            rest = rest.dropFirst(kind.count)
            break
        }
        return Array(rest.utf8)
    }

    private static func gram(_ bytes: [UInt8], _ start: Int) -> UInt32 {
        UInt32(bytes[start]) << 24 | UInt32(bytes[start + 1]) << 16 | UInt32(bytes[start + 2]) << 8
            | UInt32(bytes[start + 3])
    }

    /// Which bytes may be rewritten: in a JSON body (one that starts with `{` or `[`), the characters of
    /// string values other than escapes; in any other body, all of them.
    static func scrubbableBytes(_ body: [UInt8]) -> [Bool] {
        let first = body.first { !isWhitespace($0) }
        guard first == UInt8(ascii: "{") || first == UInt8(ascii: "[") else {
            return [Bool](repeating: true, count: body.count)
        }
        var scrubbable = [Bool](repeating: false, count: body.count)
        var index = 0
        while index < body.count {
            guard body[index] == UInt8(ascii: "\"") else {
                index += 1
                continue
            }
            // A string literal: find its end, skipping escapes.
            let open = index
            var close = index + 1
            while close < body.count, body[close] != UInt8(ascii: "\"") {
                close += body[close] == UInt8(ascii: "\\") ? 2 : 1
            }
            guard close < body.count else { break }
            var after = close + 1
            while after < body.count, isWhitespace(body[after]) { after += 1 }
            let isName = after < body.count && body[after] == UInt8(ascii: ":")
            if !isName {
                var inner = open + 1
                while inner < close {
                    if body[inner] == UInt8(ascii: "\\") {
                        inner += 2
                    } else {
                        scrubbable[inner] = true
                        inner += 1
                    }
                }
            }
            index = close + 1
        }
        return scrubbable
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\t")
    }
}
