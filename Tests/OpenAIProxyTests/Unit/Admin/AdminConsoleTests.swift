import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AdminServer
@testable import Shared

@Suite("Web console serving")
struct AdminConsoleTests {
    static let policy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

    /// A vendor directory laid out like Debian's: bootstrap5/ (its files linked elsewhere, as Debian does),
    /// chart.js/, a third package that is not served, and a secret beside them all.
    static func vendorDirectory(in root: TemporaryDirectory) throws -> String {
        let fm = FileManager.default
        let vendor = root.file("javascript")
        for directory in ["bootstrap5/css", "bootstrap5/js", "chart.js", "jquery", "../bootstrap-html/css"] {
            try fm.createDirectory(atPath: vendor + "/" + directory, withIntermediateDirectories: true)
        }
        try "BOOTSTRAP-CSS".write(
            toFile: root.file("bootstrap-html/css/bootstrap.min.css"), atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(
            atPath: vendor + "/bootstrap5/css/bootstrap.min.css",
            withDestinationPath: "../../../bootstrap-html/css/bootstrap.min.css")
        try "BOOTSTRAP-JS".write(
            toFile: vendor + "/bootstrap5/js/bootstrap.bundle.min.js", atomically: true, encoding: .utf8)
        try "CHART-JS".write(toFile: vendor + "/chart.js/chart.min.js", atomically: true, encoding: .utf8)
        try "JQUERY-SECRET".write(toFile: vendor + "/jquery/jquery.js", atomically: true, encoding: .utf8)
        try "TOP-SECRET".write(toFile: vendor + "/secret.txt", atomically: true, encoding: .utf8)
        try "ROOT-SECRET".write(toFile: root.file("secret.txt"), atomically: true, encoding: .utf8)
        return vendor
    }

    static func harness(vendor: String, console: String? = nil) throws -> AdminHarness {
        var configuration = ProxyConfiguration.defaults(cores: 2)
        configuration.consoleVendorDirectory = vendor
        configuration.consoleDirectory = console
        return try AdminHarness(configuration: configuration)
    }

    static func expectSecurityHeaders(_ answer: AdminAnswer, _ what: String) {
        #expect(answer.headers[.contentSecurityPolicy] == policy, "\(what): CSP")
        #expect(answer.headers[.xContentTypeOptions] == "nosniff", "\(what): nosniff")
        #expect(answer.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer", "\(what): referrer policy")
    }

    @Test("the page, its assets and the vendor files are served open, with content types and security headers")
    func servesConsole() async throws {
        let root = TemporaryDirectory()
        let harness = try Self.harness(vendor: try Self.vendorDirectory(in: root))
        try await harness.run { client in
            let page = try await client.call(.get, "/", headers: [:])
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.headers[.cacheControl] == "no-store")
            #expect(page.text.contains("<script defer src=\"/assets/app.js\"></script>"))
            #expect(page.text.contains("data-vendor-missing=\"\""), "nothing is missing")
            #expect(!page.text.contains("<script>") && !page.text.contains("style=\""), "no inline script or style")
            Self.expectSecurityHeaders(page, "/")

            let script = try await client.call(.get, "/assets/app.js", headers: [:])
            #expect(script.status == .ok)
            #expect(script.headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(script.text.contains("window.OPX"))
            Self.expectSecurityHeaders(script, "app.js")
            let style = try await client.call(.get, "/assets/app.css", headers: [:])
            #expect(style.status == .ok && style.headers[.contentType] == "text/css; charset=utf-8")
            for page in ["dashboard", "keys", "models", "chat", "stats", "tokens", "settings", "audit"] {
                #expect(try await client.call(.get, "/assets/page-\(page).js", headers: [:]).status == .ok, "\(page)")
            }
            #expect(try await client.call(.get, "/assets/nothing.js", headers: [:]).status == .notFound)

            let css = try await client.call(.get, "/vendor/bootstrap5/css/bootstrap.min.css", headers: [:])
            #expect(css.status == .ok)
            #expect(css.text == "BOOTSTRAP-CSS", "a Debian-style symbolic link inside the subtree is followed")
            #expect(css.headers[.contentType] == "text/css; charset=utf-8")
            #expect(css.headers[.cacheControl] == "public, max-age=86400")
            Self.expectSecurityHeaders(css, "bootstrap css")
            let chart = try await client.call(.get, "/vendor/chart.js/chart.min.js", headers: [:])
            #expect(chart.status == .ok && chart.text == "CHART-JS")
            #expect(chart.headers[.contentType] == "text/javascript; charset=utf-8")
        }
    }

    @Test("the page says whether its cookie names a live session, so it asks the API only then")
    func marksLiveSession() async throws {
        let root = TemporaryDirectory()
        let harness = try Self.harness(vendor: try Self.vendorDirectory(in: root))
        let live = try await harness.services.sessions.create(client: "t", now: harness.clock.now, lifetime: 60_000)
        try await harness.run { client in
            let cookie = { (id: String) -> HTTPFields in [.cookie: "\(AdminAuthMiddleware.cookieName)=\(id)"] }
            #expect(try await client.call(.get, "/", headers: [:]).text.contains("data-session=\"\""))
            let signedIn = try await client.call(.get, "/", headers: cookie(live.id))
            #expect(signedIn.text.contains("data-session=\"1\""))
            #expect(signedIn.headers[.cacheControl] == "no-store")
            #expect(try await client.call(.get, "/", headers: cookie("made-up")).text.contains("data-session=\"\""))
            harness.clock.advance(seconds: 61)
            #expect(try await client.call(.get, "/", headers: cookie(live.id)).text.contains("data-session=\"\""))
        }
    }

    @Test("no path leaves the two vendor subtrees or the console's own files")
    func refusesTraversal() async throws {
        let root = TemporaryDirectory()
        let harness = try Self.harness(vendor: try Self.vendorDirectory(in: root))
        let attempts = [
            "/vendor/bootstrap5/../secret.txt", "/vendor/bootstrap5/%2e%2e/secret.txt",
            "/vendor/bootstrap5/..%2fsecret.txt", "/vendor/bootstrap5/css/..%2F..%2Fsecret.txt",
            "/vendor/bootstrap5/css/%2E%2E/%2E%2E/%2E%2E/secret.txt", "/vendor/chart.js/..%2f..%2fsecret.txt",
            "/vendor/chart.js/%2e%2e/jquery/jquery.js", "/vendor/jquery/jquery.js", "/vendor/secret.txt",
            "/vendor/bootstrap5/", "/vendor/bootstrap5/css", "/vendor/bootstrap5/css/%00bootstrap.min.css",
            "/vendor/bootstrap5/.%2e/secret.txt", "/assets/..%2f..%2fPackage.swift", "/assets/%2e%2e",
            "/assets/../../Package.swift", "/assets/.hidden", "/vendor/chart.js/..\\..\\secret.txt",
        ]
        try await harness.run { client in
            for uri in attempts {
                let answer = try await client.call(.get, uri, headers: [:])
                #expect(answer.status == .notFound || answer.status == .badRequest, "\(uri) → \(answer.status)")
                #expect(!answer.text.contains("SECRET"), "\(uri) served a file outside the subtrees")
                #expect(!answer.text.contains("PackageDescription"), "\(uri) served a source file")
            }
        }
    }

    @Test("without the vendor files the page is still served, names the missing packages, and a warning says so")
    func missingVendor() async throws {
        let root = TemporaryDirectory()
        let harness = try Self.harness(vendor: root.file("absent"))
        let routes = ConsoleRoutes(configuration: harness.services.configuration)
        #expect(routes.missingPackages() == ["libjs-bootstrap5", "libjs-chart.js"])
        let warning = try #require(routes.vendorWarning())
        #expect(warning.contains("libjs-bootstrap5 libjs-chart.js") && warning.contains(root.file("absent")))
        #expect(warning.contains("OPENAI_PROXY_CONSOLE_VENDOR_DIR"))
        try await harness.run { client in
            let page = try await client.call(.get, "/", headers: [:])
            #expect(page.status == .ok)
            #expect(page.text.contains("data-vendor-missing=\"libjs-bootstrap5 libjs-chart.js\""))
            Self.expectSecurityHeaders(page, "/")
            let css = try await client.call(.get, "/vendor/bootstrap5/css/bootstrap.min.css", headers: [:])
            #expect(css.status == .notFound)
            #expect(try await client.call(.get, "/assets/app.js", headers: [:]).status == .ok)
        }

        let vendor = try Self.vendorDirectory(in: root)
        try FileManager.default.removeItem(atPath: vendor + "/chart.js/chart.min.js")
        let partial = ConsoleRoutes(configuration: try Self.harness(vendor: vendor).services.configuration)
        #expect(partial.missingPackages() == ["libjs-chart.js"])
        #expect(
            ConsoleRoutes(configuration: try Self.harness(vendor: root.file("javascript")).services.configuration)
                .vendorWarning()?.contains("libjs-chart.js") == true)
    }

    @Test("OPENAI_PROXY_CONSOLE_DIR serves the files from disk, read at each request")
    func developmentDirectory() async throws {
        let root = TemporaryDirectory()
        let console = root.file("console")
        try FileManager.default.createDirectory(atPath: console, withIntermediateDirectories: true)
        try "<html data-vendor-missing=\"\">FIRST</html>".write(
            toFile: console + "/index.html", atomically: true, encoding: .utf8)
        let harness = try Self.harness(vendor: try Self.vendorDirectory(in: root), console: console)
        try await harness.run { client in
            #expect(try await client.call(.get, "/", headers: [:]).text.contains("FIRST"))
            try "<html>SECOND</html>".write(toFile: console + "/index.html", atomically: true, encoding: .utf8)
            #expect(try await client.call(.get, "/", headers: [:]).text.contains("SECOND"))
            #expect(try await client.call(.get, "/assets/app.js", headers: [:]).status == .notFound)
            try "let x = 1".write(toFile: console + "/app.js", atomically: true, encoding: .utf8)
            #expect(try await client.call(.get, "/assets/app.js", headers: [:]).text == "let x = 1")
            #expect(try await client.call(.get, "/assets/..%2fsecret.txt", headers: [:]).status == .notFound)
        }
    }

    @Test("the binary holds every file of Sources/AdminServer/Console, unchanged")
    func embeddedFilesMatchSources() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/AdminServer/Console")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".") }
        #expect(Set(names) == Set(ConsoleFiles.all.keys))
        #expect(names.contains("index.html") && names.contains("app.js") && names.contains("page-keys.js"))
        for name in names {
            let source = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            #expect(ConsoleFiles.all[name] == source, "\(name) differs from its compiled-in copy")
        }
    }
}
