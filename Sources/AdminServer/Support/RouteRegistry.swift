import Hummingbird
import Synchronization

/// The admin routes as registered (`GET /api/keys/{id}`), so a test can hold the OpenAPI document to them.
final class RouteRegistry: Sendable {
    private let entries = Mutex<[String]>([])

    /// Every `METHOD /path` registered so far.
    var all: [String] { entries.withLock { $0 } }

    /// Records one route.
    func add(_ method: HTTPRequest.Method, _ path: String) {
        entries.withLock { $0.append("\(method.rawValue) \(path)") }
    }
}

/// A router group that records each route it registers in a `RouteRegistry`; handlers answer a `Response`.
struct APIGroup {
    let group: RouterGroup<AdminRequestContext>
    /// The group's path prefix, such as `/api`.
    let prefix: String
    let registry: RouteRegistry

    /// Registers `handler` for `method` on `prefix/path` (`{name}` captures a parameter).
    func on(
        _ method: HTTPRequest.Method, _ path: String,
        use handler: @escaping @Sendable (Request, AdminRequestContext) async throws -> Response
    ) {
        registry.add(method, path.isEmpty ? prefix : "\(prefix)/\(path)")
        group.on(RouterPath(path), method: method, use: handler)
    }
}
