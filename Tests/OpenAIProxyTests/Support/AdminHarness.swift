import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization

@testable import AdminServer
@testable import Shared

/// A clock tests move by hand (Unix ms).
final class TestClock: Sendable {
    private let value = Mutex<Int64>(1_800_001_800_000)

    /// Now.
    var now: Int64 { value.withLock { $0 } }

    /// Moves the clock forward.
    func advance(seconds: Int64) {
        value.withLock { $0 += seconds * 1000 }
    }
}

/// The admin router over a fresh database, with a clock the test moves.
struct AdminHarness {
    static let adminToken = "admin-token-0123456789"

    let test: TestDatabase
    let clock = TestClock()
    let services: AdminServices

    init(configuration: ProxyConfiguration = .defaults(cores: 2), chat: ChatGateway? = nil) throws {
        test = try TestDatabase()
        let clock = self.clock
        // The data directory is the database's, as in a real installation (`/metrics` reads the spool there).
        var configuration = configuration
        configuration.dataDirectory = test.directory.path
        services = AdminServices(
            database: test.database, box: test.box, adminToken: Self.adminToken, configuration: configuration,
            chat: chat, now: { clock.now })
    }

    /// Runs `body` with a client of the real router, the admin server's background key tests running.
    func run(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: AdminServer.buildRouter(services), services: [services.keyTests])
        try await app.test(.router) { client in try await body(client) }
    }

    /// The bearer header.
    static var bearer: HTTPFields { [.authorization: "Bearer \(adminToken)"] }
}

/// An answer as the admin tests read it.
struct AdminAnswer {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let text: String

    /// The body as a JSON object.
    var object: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
    /// The body as a JSON array of objects.
    var array: [[String: Any]] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]] ?? [] }
    /// `error.code`.
    var errorCode: String? { (object["error"] as? [String: Any])?["code"] as? String }
    /// `error.param`.
    var errorParam: String? { (object["error"] as? [String: Any])?["param"] as? String }
    /// `error.message`.
    var errorMessage: String? { (object["error"] as? [String: Any])?["message"] as? String }
}

extension TestClientProtocol {
    /// Sends a request (JSON text body, bearer by default) and collects the answer.
    func call(
        _ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers: HTTPFields = AdminHarness.bearer,
        body: ByteBuffer? = nil
    ) async throws -> AdminAnswer {
        var headers = headers
        if json != nil { headers[.contentType] = "application/json" }
        let payload = body ?? json.map { ByteBuffer(string: $0) }
        return try await execute(uri: uri, method: method, headers: headers, body: payload) { response in
            AdminAnswer(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }
}
