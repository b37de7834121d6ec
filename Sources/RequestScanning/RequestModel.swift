/// The model a request names, as the upstream will read it.
public enum RequestModel: Equatable, Sendable {
    /// No body, or a body without a `model` member or part.
    case absent
    /// The model, escapes decoded.
    case named(String)
    /// A body whose model cannot be told.
    case unreadable(ModelUnreadable)

    /// The model's name, when the body has a readable one.
    public var name: String? {
        if case .named(let name) = self { return name }
        return nil
    }

    /// Whether the body has a model that cannot be told.
    public var isUnreadable: Bool {
        if case .unreadable = self { return true }
        return false
    }
}

/// Why a request's model cannot be told.
public enum ModelUnreadable: Equatable, Sendable {
    /// A JSON body that is not JSON.
    case malformedJSON
    /// A JSON body nested deeper than `JSONScanner.maximumDepth`.
    case tooDeep
    /// More than one top-level `model` member (or `model` part): readers disagree on which counts.
    case duplicateModel
    /// A `model` that is not a string.
    case modelNotString
    /// A multipart body (or its content type) that does not parse.
    case malformedMultipart
    /// A body of a content type that carries no model we know how to read.
    case unknownContentType
}

/// What the proxy reads of a request body, in one pass: its model, and what ties it to a key.
public struct RequestFields: Equatable, Sendable {
    /// The model the upstream will read.
    public var model: RequestModel
    /// The top-level `prompt_cache_key` string of a JSON body: requests that share one go to the same key,
    /// whose prompt cache they share.
    public var promptCacheKey: String?
    /// The ids of stored objects the body names (`ObjectReferences.fieldNames`, at any depth), in order; empty
    /// for most bodies.
    public var objectIDs: [String]

    /// Fields with these values.
    public init(model: RequestModel, promptCacheKey: String? = nil, objectIDs: [String] = []) {
        self.model = model
        self.promptCacheKey = promptCacheKey
        self.objectIDs = objectIDs
    }
}

/// Reads the model of a request body: JSON (the content type says JSON, or there is none) or
/// multipart/form-data.
public enum RequestModelReader {
    /// The model of `body`, sent with `contentType`.
    public static func read(_ body: UnsafeRawBufferPointer, contentType: String?) -> RequestModel {
        fields(body, contentType: contentType).model
    }

    /// The model and the routing fields of `body`, sent with `contentType`.
    public static func fields(_ body: UnsafeRawBufferPointer, contentType: String?) -> RequestFields {
        guard !body.isEmpty else { return RequestFields(model: .absent) }
        guard let contentType else { return json(body) }
        if ASCII.containsIgnoringCase(contentType, "json") { return json(body) }
        guard ASCII.hasPrefixIgnoringCase(contentType, "multipart/form-data") else {
            return RequestFields(model: .unreadable(.unknownContentType))
        }
        guard let boundary = MultipartForm.boundary(contentType: contentType) else {
            return RequestFields(model: .unreadable(.malformedMultipart))
        }
        return MultipartForm.fields(in: body, boundary: boundary)
    }

    /// The top-level `model` and `prompt_cache_key`, and the object ids at any depth, of a JSON document; the whole text is checked,
    /// so a repeated `model` or a malformed tail is seen. A `prompt_cache_key` that is not a string is left to
    /// the upstream to refuse.
    public static func json(_ body: UnsafeRawBufferPointer) -> RequestFields {
        var scanner = JSONScanner(body)
        var model: Range<Int>?
        var cacheKey: Range<Int>?
        var repeated = false
        var objectIDs: [String] = []
        do {
            try scanner.forEachMember(
                wholeText: true,
                visitingNested: { name, start in
                    if ObjectReferences.isField(name, in: body) {
                        ObjectReferences.collectNested(at: start, in: body, into: &objectIDs)
                    }
                }
            ) { name, value in
                if JSONText.matches(name, "model", in: body) {
                    repeated = model != nil
                    model = value
                } else if JSONText.matches(name, "prompt_cache_key", in: body) {
                    cacheKey = value
                } else if ObjectReferences.isField(name, in: body) {
                    ObjectReferences.collect(value: value, in: body, into: &objectIDs)
                }
                return true
            }
        } catch .tooDeep {
            return RequestFields(model: .unreadable(.tooDeep))
        } catch {
            return RequestFields(model: .unreadable(.malformedJSON))
        }
        let promptCacheKey = cacheKey.flatMap { JSONText.decodeString(value: $0, in: body) }
        let read: RequestModel
        if repeated {
            read = .unreadable(.duplicateModel)
        } else if let model {
            read = JSONText.decodeString(value: model, in: body).map { .named($0) } ?? .unreadable(.modelNotString)
        } else {
            read = .absent
        }
        return RequestFields(model: read, promptCacheKey: promptCacheKey, objectIDs: objectIDs)
    }
}

/// ASCII case-insensitive matching for header values, without Foundation.
enum ASCII {
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    static func equalIgnoringCase<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { lowercased($0) == lowercased($1) }
    }

    static func hasPrefixIgnoringCase(_ text: String, _ prefix: String) -> Bool {
        let utf8 = text.utf8
        return utf8.count >= prefix.utf8.count && equalIgnoringCase(utf8.prefix(prefix.utf8.count), prefix.utf8)
    }

    static func containsIgnoringCase(_ text: String, _ part: String) -> Bool {
        // Compared in place: copying both into arrays for a generic search over a closed range cost some 1,700
        // instructions for every request's content type.
        var text = text
        var part = part
        return text.withUTF8 { bytes in
            part.withUTF8 { wanted in
                guard bytes.count >= wanted.count else { return false }
                search: for start in 0...(bytes.count - wanted.count) {
                    for offset in 0..<wanted.count where lowercased(bytes[start + offset]) != lowercased(wanted[offset])
                    {
                        continue search
                    }
                    return true
                }
                return false
            }
        }
    }
}
