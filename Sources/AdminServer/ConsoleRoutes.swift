import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Shared

/// The web console: `GET /` (the page), `GET /assets/<file>` (its scripts and styles, compiled into the
/// binary from `Sources/AdminServer/Console/`) and `GET /vendor/bootstrap5/…`, `GET /vendor/chart.js/…`
/// (Debian's `libjs-bootstrap5` and `libjs-chart.js`, read from the vendor directory).
///
/// Open like `/healthz`: the page holds no data; it logs in through `POST /api/auth/login` and everything it
/// shows comes from the API behind the login.
struct ConsoleRoutes: Sendable {
    /// Where `libjs-bootstrap5` and `libjs-chart.js` put their files (`OPENAI_PROXY_CONSOLE_VENDOR_DIR`).
    let vendorDirectory: String
    /// For console development: the directory the console's files are read from at each request
    /// (`OPENAI_PROXY_CONSOLE_DIR`); nil serves the copies compiled in.
    let consoleDirectory: String?
    /// The login sessions, so the page learns whether its cookie names a live one; nil in tests of the files.
    let sessions: SessionStore?
    /// Unix ms now.
    let now: @Sendable () -> Int64

    /// The files the page loads from the vendor directory, each with the Debian package that provides it.
    static let vendorFiles: [(path: String, package: String)] = [
        ("bootstrap5/css/bootstrap.min.css", "libjs-bootstrap5"),
        ("bootstrap5/js/bootstrap.bundle.min.js", "libjs-bootstrap5"),
        ("chart.js/chart.min.js", "libjs-chart.js"),
    ]
    /// The vendor subtrees served; nothing else in the vendor directory is.
    static let vendorSubtrees = ["bootstrap5", "chart.js"]

    /// Sent with every console answer: nothing but our own files may run or load, and no framing.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy:
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        .xContentTypeOptions: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
    ]

    init(
        configuration: ProxyConfiguration, sessions: SessionStore? = nil,
        now: @escaping @Sendable () -> Int64 = AdminServices.systemNow
    ) {
        vendorDirectory = configuration.consoleVendorDirectory
        consoleDirectory = configuration.consoleDirectory
        self.sessions = sessions
        self.now = now
    }

    /// Adds the console's routes to `router`, recording them in `registry` (the OpenAPI document lists them).
    func register(on router: Router<AdminRequestContext>, registry: RouteRegistry) {
        router.get("/") { request, _ in try await self.index(request) }
        registry.add(.get, "/")
        router.get("/assets/:file") { _, context in
            try await self.asset(context.parameters.get("file") ?? "")
        }
        registry.add(.get, "/assets/{file}")
        for subtree in Self.vendorSubtrees {
            router.get(RouterPath("/vendor/\(subtree)/**")) { _, context in
                try await self.vendor(subtree, context.parameters.getCatchAll())
            }
            registry.add(.get, "/vendor/\(subtree)/{path}")
        }
    }

    /// The Debian packages whose files are missing from the vendor directory.
    func missingPackages() -> [String] {
        var missing: [String] = []
        for file in Self.vendorFiles where !missing.contains(file.package) {
            if !Self.isRegularFile(vendorDirectory + "/" + file.path) { missing.append(file.package) }
        }
        return missing
    }

    /// The line logged at start when the page would lack Bootstrap or Chart.js; nil when both are there.
    func vendorWarning() -> String? {
        let missing = missingPackages()
        guard !missing.isEmpty else { return nil }
        let names = missing.joined(separator: " ")
        return "web console: \(names) not found in \(vendorDirectory); the console shows a notice instead of its "
            + "pages until they are installed (apt-get install \(names)) or OPENAI_PROXY_CONSOLE_VENDOR_DIR names "
            + "where they are"
    }

    /// Logs `vendorWarning()`, once at start.
    func logVendorState(_ logger: Logger) {
        if let warning = vendorWarning() { logger.warning("\(warning)") }
    }

    // MARK: - Answers

    /// The page, marked with the packages missing right now (so it can say so without waiting for a load to
    /// fail) and with whether the request's cookie names a live session (so it asks the API for the session
    /// only then: asking without one answers 401, which the browser logs as an error).
    func index(_ request: Request) async throws -> Response {
        guard var page = try await consoleFile("index.html") else {
            throw APIError.notFound("The console page index.html is missing.")
        }
        let missing = missingPackages()
        if !missing.isEmpty {
            page = page.replacingOccurrences(
                of: "data-vendor-missing=\"\"", with: "data-vendor-missing=\"\(missing.joined(separator: " "))\"")
        }
        if try await hasLiveSession(request) {
            page = page.replacingOccurrences(of: "data-session=\"\"", with: "data-session=\"1\"")
        }
        // no-store: the page differs with the cookie.
        return Self.answer(Array(page.utf8), name: "index.html", cache: "no-store")
    }

    /// Whether the session cookie names a session that has not ended.
    private func hasLiveSession(_ request: Request) async throws -> Bool {
        guard let sessions, let id = request.cookies[AdminAuthMiddleware.cookieName]?.value, !id.isEmpty else {
            return false
        }
        if case .valid = try await sessions.lookup(id: id, now: now()) { return true }
        return false
    }

    /// One of the console's files by its bare name.
    func asset(_ name: String) async throws -> Response {
        guard Self.isSafeSegment(name), let text = try await consoleFile(name) else {
            throw APIError.notFound("No console file by that name.", param: "file")
        }
        return Self.answer(Array(text.utf8), name: name, cache: "no-cache")
    }

    /// A file under one vendor subtree. The path is checked segment by segment (after percent-decoding), so
    /// it cannot leave the subtree; symbolic links inside it are followed (Debian links bootstrap5/ into
    /// bootstrap-html/).
    func vendor(_ subtree: String, _ segments: [Substring]) async throws -> Response {
        let decoded = segments.compactMap { String($0).removingPercentEncoding }
        guard !decoded.isEmpty, decoded.count == segments.count, decoded.allSatisfy(Self.isSafeSegment) else {
            throw APIError.notFound("No such vendor file.", param: "path")
        }
        let path = ([vendorDirectory, subtree] + decoded).joined(separator: "/")
        guard let bytes = try await Self.read(path) else {
            throw APIError.notFound("No such vendor file.", param: "path")
        }
        return Self.answer(bytes, name: path, cache: "public, max-age=86400")
    }

    // MARK: - Helpers

    /// A console file's text: from the development directory when set, else compiled in.
    private func consoleFile(_ name: String) async throws -> String? {
        guard let consoleDirectory else { return ConsoleFiles.all[name] }
        return try await Self.read(consoleDirectory + "/" + name).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A regular file's bytes, read off the event loop; nil when absent or not a regular file.
    private static func read(_ path: String) async throws -> [UInt8]? {
        try await NIOThreadPool.singleton.runIfActive {
            guard isRegularFile(path), let data = FileManager.default.contents(atPath: path) else { return nil }
            return [UInt8](data)
        }
    }

    /// Whether `path` is a file (after following symbolic links), not a directory.
    private static func isRegularFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    /// A file or directory name that names nothing above or beside its directory: no `.` or `..`, no hidden
    /// name, no separator, no NUL.
    static func isSafeSegment(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 255 && !name.hasPrefix(".")
            && !name.contains(where: { $0 == "/" || $0 == "\\" || $0 == "\0" })
    }

    /// The content type of a file by its extension.
    static func contentType(_ name: String) -> String {
        switch name.split(separator: ".").last.map({ $0.lowercased() }) {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "json", "map": "application/json"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        default: "application/octet-stream"
        }
    }

    private static func answer(_ bytes: [UInt8], name: String, cache: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = contentType(name)
        headers[.cacheControl] = cache
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
