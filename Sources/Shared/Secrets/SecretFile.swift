import Crypto
import Foundation
import Glibc

/// A generated secret kept in a 0600 file under the data directory (`secret.key`, `admin.token`).
public enum SecretFile {
    /// Why a secret file could not be used.
    public struct Failure: Error, CustomStringConvertible {
        /// One line naming the file and the problem.
        public let description: String
    }

    /// Reads the secret at `path`, creating it with `generate()` (mode 0600, atomically) when missing.
    /// Returns the value and whether this call created it.
    public static func loadOrCreate(
        at path: String, generate: () -> String
    ) throws(Failure) -> (value: String, created: Bool) {
        if let existing = try read(path) { return (existing, false) }
        let value = generate()
        // Written whole into a private temporary file, then linked into place: a concurrent reader sees
        // no file or the whole secret, never an empty one, and of two creators the first link wins.
        let temporary = "\(path).\(getpid()).\(randomToken().prefix(8)).tmp"
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { unlink(temporary) }
        let line = value + "\n"
        let written = line.withCString { write(fd, $0, strlen($0)) }
        let synced = written == line.utf8.count && fsync(fd) == 0
        let writeError = errno
        close(fd)
        guard synced else {
            throw Failure(description: "cannot write \(path): \(String(cString: strerror(writeError)))")
        }
        if link(temporary, path) != 0 {
            // Another process created it first: use theirs.
            if errno == EEXIST, let existing = try read(path) { return (existing, false) }
            throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        return (value, true)
    }

    /// The trimmed contents of `path`, or nil when it does not exist.
    public static func read(_ path: String) throws(Failure) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else { throw Failure(description: "cannot read \(path)") }
        let value = text.trimmingWhitespace()
        guard !value.isEmpty else { throw Failure(description: "\(path) is empty; delete it to generate a new one") }
        return value
    }

    /// `prefix` + 43 characters of base64url from 32 random bytes.
    public static func randomToken(prefix: String = "") -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let text = bytes.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return prefix + text
    }
}
