/// The stats-socket line of an `ObjectChange`, beside the usage rows (same connection, spool and
/// acknowledgements, so a change is never lost and a replayed one changes nothing):
///
/// - `o1 c <id> <kind> <key id> <token id> <created at> <expires at>`: an object created (Unix milliseconds);
/// - `o1 d <id>`: an object deleted.
///
/// Fields are tab-separated. Ids and kinds are OpenAI's plain ASCII tokens: a change whose text holds a tab,
/// a line break or a backslash, or is longer than `maximumObjectTextBytes`, is not sent.
extension UsageWire {
    /// The longest id or kind a change line carries.
    public static let maximumObjectTextBytes = 256
    static let objectVersion = Array("o1".utf8)

    /// `change` as one newline-terminated line; nil when its text cannot be sent as it is.
    public static func encode(_ change: ObjectChange) -> [UInt8]? {
        func plain(_ text: String) -> Bool {
            !text.isEmpty && text.utf8.count <= maximumObjectTextBytes
                && !text.utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\\") || $0 == 0x7F }
        }
        var fields: [String]
        switch change {
        case .created(let object):
            guard plain(object.id), plain(object.kind) else { return nil }
            fields = [
                "c", object.id, object.kind, String(object.keyID), String(object.tokenID), String(object.createdAt),
                String(object.expiresAt),
            ]
        case .deleted(let id):
            guard plain(id) else { return nil }
            fields = ["d", id]
        }
        var line = objectVersion
        for field in fields {
            line.append(UInt8(ascii: "\t"))
            line.append(contentsOf: field.utf8)
        }
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// The change in one `o1` line (without its newline), or nil when it is not a valid one.
    static func decodeObjectChange(_ line: UnsafeRawBufferPointer) -> ObjectChange? {
        let fields = line.split(separator: UInt8(ascii: "\t"), omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        guard fields.first == "o1", fields.count >= 3, !fields[2].isEmpty,
            fields[2].utf8.count <= maximumObjectTextBytes
        else { return nil }
        switch fields[1] {
        case "c":
            guard fields.count == 8, !fields[3].isEmpty, fields[3].utf8.count <= maximumObjectTextBytes,
                let key = Int64(fields[4]), let token = Int64(fields[5]), let created = Int64(fields[6]),
                let expires = Int64(fields[7])
            else { return nil }
            return .created(
                StoredObject(
                    id: fields[2], kind: fields[3], keyID: key, tokenID: token, createdAt: created, expiresAt: expires))
        case "d":
            guard fields.count == 3 else { return nil }
            return .deleted(id: fields[2])
        default:
            return nil
        }
    }
}
