import Foundation
import Testing

@testable import Shared

@Suite("Secrets")
struct SecretsTests {
    @Test("sealed values open with the same secret only")
    func sealAndOpen() throws {
        let box = SecretBox(secret: "first-secret-0123456789")
        let sealed = box.seal("sk-live-abcdefghijklmnop")
        #expect(sealed.hasPrefix("v1:"))
        #expect(!sealed.contains("abcdefgh"))
        #expect(try box.open(sealed) == "sk-live-abcdefghijklmnop")
        #expect(box.seal("same") != box.seal("same"), "a fresh nonce per seal")
        #expect(throws: SecretBox.OpenError.wrongSecret) {
            try SecretBox(secret: "second-secret-0123456789").open(sealed)
        }
        #expect(throws: SecretBox.OpenError.malformed) { try box.open("v1:not-base64!") }
        #expect(throws: SecretBox.OpenError.malformed) { try box.open("plain") }
    }

    @Test("hints never show 8 characters of the secret in a row")
    func hints() {
        let key = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        let hint = SecretDigest.hint(key)
        #expect(hint == "sk-…6789")
        for start in 0...(key.count - 8) {
            let piece = key.dropFirst(start).prefix(8)
            #expect(!hint.contains(piece))
        }
        #expect(SecretDigest.hint("short-key") == "…ey")
    }

    @Test("digests and constant-time comparison")
    func digests() {
        #expect(SecretDigest.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SecretDigest.constantTimeEquals("token-value", "token-value"))
        #expect(!SecretDigest.constantTimeEquals("token-value", "token-valuf"))
        #expect(!SecretDigest.constantTimeEquals("token", "token-value"))
        #expect(!SecretDigest.constantTimeEquals("", "x"))
    }

    @Test("secret files are created once, with mode 0600")
    func secretFile() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("secret.key")
        let first = try SecretFile.loadOrCreate(at: path) { "generated-value" }
        #expect(first.created && first.value == "generated-value")
        let second = try SecretFile.loadOrCreate(at: path) { "other-value" }
        #expect(!second.created && second.value == "generated-value")
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(SecretFile.randomToken(prefix: "sk-proxy-").count == "sk-proxy-".count + 43)
        // Nothing is left beside it: the temporary file it was written through is gone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["secret.key"])
    }

    @Test("creators racing for one secret file all end up with the same value, and none sees it empty")
    func secretFileRace() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("admin.token")
        let results = try await withThrowingTaskGroup(of: (value: String, created: Bool).self) { group in
            for index in 0..<16 {
                group.addTask { try SecretFile.loadOrCreate(at: path) { "value-\(index)" } }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter(\.created).count == 1)
        #expect(Set(results.map(\.value)).count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["admin.token"])
    }
}
