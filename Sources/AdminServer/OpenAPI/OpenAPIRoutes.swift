import Hummingbird
import NIOCore

/// `GET /api/openapi.json`: the OpenAPI 3.1 document of this API (open: it holds no secret).
struct OpenAPIRoutes {
    func register(on api: APIGroup) {
        api.on(.get, "openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
    }
}
