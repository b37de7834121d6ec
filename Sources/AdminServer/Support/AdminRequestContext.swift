import Hummingbird
import NIOCore

/// Who a request of the admin API acts as, once authenticated.
public enum AdminIdentity: Sendable, Equatable {
    /// `Authorization: Bearer <admin token>`: a script.
    case adminToken
    /// A logged-in operator's cookie session, named by the first 8 hex digits of its stored hash.
    case session(idHash: String, csrfToken: String, expiresAt: Int64)

    /// How the audit log names this actor.
    public var actor: String {
        switch self {
        case .adminToken: return "admin-token"
        case .session(let idHash, _, _): return "session:\(idHash.prefix(8))"
        }
    }
}

/// The request context of the admin API: the client's address (for login throttling and the audit log)
/// and, after `AdminAuthMiddleware`, who the request acts as.
public struct AdminRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's address, as `ip` (or `unknown` when the channel has none, as in router tests).
    public let client: String
    /// Set by `AdminAuthMiddleware` for every request it lets through.
    public var identity: AdminIdentity?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        client = source.channel.remoteAddress?.ipAddress ?? "unknown"
        identity = nil
    }

    /// Request bodies above 1 MiB are refused with 413 (a bulk import of 10,000 keys fits).
    public var maxUploadSize: Int { 1 << 20 }
}
