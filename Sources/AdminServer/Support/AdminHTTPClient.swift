import AsyncHTTPClient
import NIOCore

/// The HTTP client the admin server asks the upstream (model refresh) and the proxy (chat) with. Unlike
/// `HTTPClient.shared` it fails at once when a connection is refused instead of retrying until the
/// connect timeout, so an operator learns of a down upstream or proxy immediately.
enum AdminHTTPClient {
    /// One client for the process's life.
    static let shared: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(600))
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()
}
