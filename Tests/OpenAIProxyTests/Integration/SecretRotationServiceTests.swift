import Foundation
import GRDB
import Testing

@testable import Shared

extension RealService {
    @Suite("rotate-secret on the real service", .serialized)
    struct SecretRotationServiceTests {
        private static let chatPath = "/v1/chat/completions"

        /// The stored key values, sealed, by id.
        private func sealedValues(_ service: ProxyService) throws -> [String] {
            try service.writableDatabase().read { db in
                try String.fetchAll(db, sql: "SELECT key_value FROM keys ORDER BY id")
            }
        }

        private func secretFile(_ service: ProxyService) -> String? {
            (try? SecretFile.read(service.directory.file("data") + "/secret.key")) ?? nil
        }

        @Test("keys are re-encrypted while the service serves; workers, the admin server and a restart follow")
        func rotateWhileServing() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let keys = ["sk-rotation-alpha-0123456789", "sk-rotation-bravo-0123456789"]
            let service = ProxyService(upstream: upstream.baseURL, workers: 2)
            try service.addKeys(keys)
            let token = try service.createToken()
            try await service.start()
            for _ in 0..<4 { #expect(try await TestHTTP.chat(service, token: token).status == 200) }
            let old = try #require(secretFile(service))

            let rotation = try service.cli(["rotate-secret"])
            #expect(rotation.status == 0, "\(rotation.stderr)")
            #expect(rotation.stdout.hasPrefix("re-encrypted 2 of 2 key(s) under a new secret"))
            let new = try #require(secretFile(service))
            #expect(new != old)
            #expect(!FileManager.default.fileExists(atPath: service.directory.file("data") + "/secret.key.next"))
            let sealed = try sealedValues(service)
            #expect(try sealed.map { try SecretBox(secret: new).open($0) } == keys)
            #expect(sealed.allSatisfy { (try? SecretBox(secret: old).open($0)) == nil })

            // The admin server, started before the rotation, seals a new key under the new secret…
            let added = try await TestHTTP.send(
                .POST, service.adminURL + "/api/keys", token: service.adminToken,
                json: #"{"name":"after","key_value":"sk-rotation-charlie-012345678"}"#)
            #expect(added.status == 201, "\(added.body)")
            #expect(try SecretBox(secret: new).open(try sealedValues(service)[2]) == "sk-rotation-charlie-012345678")
            // …and opens the re-sealed ones (a probe decrypts the stored value).
            let probe = try await TestHTTP.send(.POST, service.adminURL + "/api/keys/1/test", token: service.adminToken)
            #expect(probe.status == 200 && probe.json["ok"] as? Bool == true, "\(probe.body)")

            // The workers reload the pool (the values changed) and open every key under the new secret.
            upstream.reset()
            #expect(
                try await eventually(timeout: .seconds(10)) {
                    _ = try await TestHTTP.chat(service, token: token)
                    return upstream.count(key: "sk-rotation-charlie-012345678", path: Self.chatPath) > 0
                })
            upstream.reset()
            for _ in 0..<9 { #expect(try await TestHTTP.chat(service, token: token).status == 200) }
            for key in keys + ["sk-rotation-charlie-012345678"] {
                #expect(upstream.count(key: key, path: Self.chatPath) >= 2, "\(key) served after the rotation")
            }
            #expect(!service.log.contains("key skipped"))

            // Nothing was left sealed under the old secret: a restart serves every key.
            #expect(await service.stop() == 0)
            try await service.start()
            upstream.reset()
            for _ in 0..<6 { #expect(try await TestHTTP.chat(service, token: token).status == 200) }
            #expect(keys.allSatisfy { upstream.count(key: $0, path: Self.chatPath) >= 1 })
            #expect(await service.stop() == 0)
        }

        @Test("with SECRET_KEY the command says in one line what to do instead, and changes nothing")
        func configuredSecretRefused() async throws {
            let service = ProxyService(upstream: "http://127.0.0.1:9", workers: 1)
            let secret = ["SECRET_KEY": "configured-secret-0123456789"]
            #expect(
                try service.cli(
                    ["keys", "add", "--name", "a", "--value", "sk-configured-0123456789", "--no-probe"],
                    environment: secret
                ).status == 0)
            let before = try sealedValues(service)
            let refused = try service.cli(["rotate-secret"], environment: secret)
            #expect(refused.status == 1)
            #expect(refused.stderr.hasPrefix("openai-proxy: SECRET_KEY is set by the configuration"))
            #expect(refused.stderr.split(separator: "\n").count == 1)
            #expect(!refused.stderr.contains("configured-secret-0123456789"))
            #expect(try sealedValues(service) == before)
        }
    }
}
