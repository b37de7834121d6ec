import Glibc

/// A small file that several processes map into memory to share counters (created, mode 0600, when missing).
public enum SharedMemoryFile {
    /// Why the file could not be mapped.
    public struct Failure: Error, CustomStringConvertible {
        /// One line naming the file and the reason.
        public let description: String
    }

    /// Maps `size` bytes of the file at `path`, growing it to that size when it is smaller.
    static func map(path: String, size: Int) throws(Failure) -> UnsafeMutableRawPointer {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw Failure(description: "cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        if status.st_size < size, ftruncate(fd, off_t(size)) != 0 {
            throw Failure(description: "cannot size \(path): \(String(cString: strerror(errno)))")
        }
        guard let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapping != MAP_FAILED
        else { throw Failure(description: "cannot map \(path): \(String(cString: strerror(errno)))") }
        return mapping
    }
}
