import Foundation

/// Reads `/proc` to find a process's children and whether a pid is still alive.
enum ProcessTable {
    /// Pids whose parent is `parent`, with their command lines.
    static func children(of parent: pid_t) -> [(pid: pid_t, command: String)] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var result: [(pid_t, String)] = []
        for entry in entries {
            guard let pid = pid_t(entry), let parentOf = parentPID(of: pid), parentOf == parent else { continue }
            result.append((pid, commandLine(of: pid)))
        }
        return result.sorted { $0.0 < $1.0 }
    }

    /// True when `pid` exists and is not a zombie.
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    /// The parent of `pid`, from `/proc/pid/stat`.
    static func parentPID(of pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }

    /// The command line of `pid`, arguments joined by spaces.
    static func commandLine(of pid: pid_t) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }
}
