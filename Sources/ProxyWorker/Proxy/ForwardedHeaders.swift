import HTTPTypes
import NIOHTTP1
import Shared

/// Which headers cross the proxy: hop-by-hop headers never do, and the client's credentials are replaced.
enum ForwardedHeaders {
    /// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus those we set ourselves.
    private static let notForwardedUpstream: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length", "authorization",
        // Ask for identity encoding: usage is read from the answer as it streams past.
        "accept-encoding",
    ]

    private static let notForwardedDownstream: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// The client's headers as sent upstream, with `Authorization` carrying the upstream key.
    static func upstream(from fields: HTTPFields, key: String) -> HTTPHeaders {
        let named = connectionListed(fields)
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 1)
        for field in fields {
            let name = field.name.canonicalName
            if notForwardedUpstream.contains(name) || named.contains(name) { continue }
            headers.add(name: name, value: field.value)
        }
        headers.add(name: "authorization", value: "Bearer " + key)
        return headers
    }

    /// The upstream's headers as sent to the client.
    static func downstream(from headers: HTTPHeaders) -> HTTPFields {
        var named: Set<String> = []
        for value in headers["connection"] {
            for token in value.split(separator: ",") { named.insert(String(token).trimmingWhitespace().lowercased()) }
        }
        var fields = HTTPFields()
        for (name, value) in headers {
            let lower = name.lowercased()
            if notForwardedDownstream.contains(lower) || named.contains(lower) { continue }
            guard let fieldName = HTTPField.Name(name) else { continue }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        return fields
    }

    private static func connectionListed(_ fields: HTTPFields) -> Set<String> {
        var named: Set<String> = []
        for value in fields[values: .connection] {
            for token in value.split(separator: ",") { named.insert(String(token).trimmingWhitespace().lowercased()) }
        }
        return named
    }
}
