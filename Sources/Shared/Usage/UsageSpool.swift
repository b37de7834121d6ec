import Glibc

/// The spool directory (`DATA_DIR/spool`): usage rows a worker could not hand to the collector, one line
/// each (the wire format), in append-only segment files, so they survive the worker being killed.
///
/// A segment is `<owner>-<n>.spool`, `owner` unique per worker process. Its owner holds an exclusive
/// `flock` on it for as long as it keeps the file, and the kernel drops that lock when the process dies
/// however it dies; a segment whose lock can be taken therefore belongs to nobody, and any worker adopts it
/// and replays it. A segment is created under a temporary name, locked, then renamed into place, so no
/// one can see it unlocked.
public struct UsageSpool: Sendable {
    /// The directory holding the segments.
    public let directory: String
    private let owner: String
    private var created = 0

    /// One segment file held open and locked by this process.
    public struct Segment: Sendable {
        /// Its path.
        public let path: String
        /// The open, locked file.
        public let descriptor: Int32
        /// Bytes in it.
        public var size: Int
    }

    /// Why a segment could not be written.
    public struct Failure: Error, CustomStringConvertible {
        /// One line naming the path and the reason.
        public let description: String
    }

    /// The spool in `directory`, for a process whose segments are named after `owner`.
    public init(directory: String, owner: String) {
        self.directory = directory
        self.owner = owner
    }

    /// A new, empty segment of this process (creating the directory, mode 0700, when missing).
    public mutating func create() throws(Failure) -> Segment {
        mkdir(directory, 0o700)
        created += 1
        let path = "\(directory)/\(owner)-\(created).spool"
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Self.failure("cannot create", temporary) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0, rename(temporary, path) == 0 else {
            let error = Self.failure("cannot lock and place", path)
            unlink(temporary)
            close(descriptor)
            throw error
        }
        return Segment(path: path, descriptor: descriptor, size: 0)
    }

    /// Appends `line` to `segment`; on a short write (a full disk) the segment is cut back to whole lines.
    public static func append(_ line: [UInt8], to segment: inout Segment) throws(Failure) {
        try append(line[...], to: &segment)
    }

    /// Appends `lines` (whole lines, back to back) to `segment` in one write; on a short write (a full disk)
    /// the segment is cut back to whole lines.
    public static func append(_ line: ArraySlice<UInt8>, to segment: inout Segment) throws(Failure) {
        var written = 0
        while written < line.count {
            let result = line.withUnsafeBytes { bytes in
                write(segment.descriptor, bytes.baseAddress! + written, bytes.count - written)
            }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else {
                let error = failure("cannot write", segment.path)
                _ = ftruncate(segment.descriptor, off_t(segment.size))
                throw error
            }
            written += result
        }
        segment.size += line.count
    }

    /// Whole lines of `segment` from `offset`: up to `limit` bytes, or the one line there if it is longer.
    /// Empty at the end, or when no line ends there (a write torn by a crash: those bytes are no row).
    public static func lines(of segment: Segment, from offset: Int, limit: Int = 64 * 1024) -> [UInt8] {
        var size = min(limit, segment.size - offset)
        while size > 0 {
            var chunk = [UInt8](repeating: 0, count: size)
            let read = chunk.withUnsafeMutableBytes { pread(segment.descriptor, $0.baseAddress!, size, off_t(offset)) }
            guard read > 0 else { return [] }
            chunk.removeLast(size - read)
            if let end = chunk.lastIndex(of: UInt8(ascii: "\n")) { return Array(chunk[...end]) }
            // No line ends within `limit`: one longer line (a chat row), read whole, up to the longest line.
            guard size < segment.size - offset, size < UsageWire.maximumLineBytes else { return [] }
            size = min(segment.size - offset, UsageWire.maximumLineBytes)
        }
        return []
    }

    /// Deletes a segment whose rows the collector has committed.
    public static func remove(_ segment: Segment) {
        unlink(segment.path)
        close(segment.descriptor)
    }

    /// Lets go of a segment without deleting it: another worker adopts and replays it.
    public static func release(_ segment: Segment) {
        close(segment.descriptor)
    }

    /// Segments whose owner is gone, locked for this process now, at most `budget` bytes in all; empty ones
    /// and abandoned temporary files are deleted instead.
    public func adoptOrphans(excluding held: Set<String>, budget: Int) -> [Segment] {
        var adopted: [Segment] = []
        var room = budget
        for name in Self.names(in: directory) {
            let path = "\(directory)/\(name)"
            let temporary = name.hasSuffix(".spool.tmp")
            guard name.hasSuffix(".spool") || temporary, !held.contains(path) else { continue }
            // A temporary file is a segment being created right now unless it is old: its owner died in between.
            var age = stat()
            if temporary, stat(path, &age) != 0 || age.st_mtim.tv_sec > time(nil) - 60 { continue }
            let descriptor = open(path, O_RDWR | O_APPEND | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            var status = stat()
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0, fstat(descriptor, &status) == 0 else {
                close(descriptor)
                continue
            }
            let segment = Segment(path: path, descriptor: descriptor, size: Int(status.st_size))
            if temporary || segment.size == 0 {
                Self.remove(segment)
            } else if segment.size <= room {
                room -= segment.size
                adopted.append(segment)
            } else {
                Self.release(segment)
            }
        }
        return adopted
    }

    /// Segment files in `directory` and their bytes in all (for metrics).
    public static func usage(of directory: String) -> (segments: Int, bytes: Int) {
        var segments = 0
        var bytes = 0
        for name in names(in: directory) where name.hasSuffix(".spool") {
            var status = stat()
            guard stat("\(directory)/\(name)", &status) == 0 else { continue }
            segments += 1
            bytes += Int(status.st_size)
        }
        return (segments, bytes)
    }

    private static func names(in directory: String) -> [String] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != ".", name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    private static func failure(_ what: String, _ path: String) -> Failure {
        Failure(description: "\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
