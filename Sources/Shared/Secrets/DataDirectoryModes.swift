import Glibc

/// The modes the data directory and its secret-bearing files are kept at: the directory 0700, the database
/// (with its `-wal` and `-shm`), `secret.key` and `admin.token` 0600. Applied at every start, so a directory
/// made by hand or by an older version, or a database created under a loose umask, is tightened too.
public enum DataDirectoryModes {
    /// The directory's mode.
    public static let directory: mode_t = 0o700
    /// Every listed file's mode.
    public static let file: mode_t = 0o600

    /// One mode this start changed, for the log.
    public struct Change: Sendable, Equatable, CustomStringConvertible {
        /// The path changed.
        public let path: String
        /// Its permission bits before.
        public let before: mode_t
        /// Its permission bits now.
        public let after: mode_t

        public var description: String {
            "\(path): mode \(String(before, radix: 8)) -> \(String(after, radix: 8))"
        }
    }

    /// The files under `paths` that must be 0600 (those that exist are changed).
    public static func files(_ paths: DataPaths) -> [String] {
        [paths.database, paths.database + "-wal", paths.database + "-shm", paths.secretKey, paths.adminToken]
    }

    /// Sets the directory to 0700 and each existing file to 0600; returns what it changed. Throws a one-line
    /// reason when a mode cannot be set.
    public static func apply(_ paths: DataPaths) throws -> [Change] {
        var changes: [Change] = []
        for (path, mode) in [(paths.directory, directory)] + files(paths).map({ ($0, file) }) {
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            let current = info.st_mode & 0o7777
            guard current != mode else { continue }
            guard chmod(path, mode) == 0 else {
                throw SecretFile.Failure(
                    description:
                        "cannot set mode \(String(mode, radix: 8)) on \(path): \(String(cString: strerror(errno)))")
            }
            changes.append(Change(path: path, before: current, after: mode))
        }
        return changes
    }
}
