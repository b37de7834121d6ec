import Shared

/// Bounds the `model` and `key` label values of a Prometheus text exposition: a model the service knows
/// (its models table, the models its keys list) and an existing key id keep their value, anything else
/// becomes `other`, and series that end up with the same labels are summed into one. A client choosing
/// model names can then grow `/metrics` by at most one series per metric.
///
/// Applied to the collector's counters, which are fed by usage rows and so carry whatever model a client
/// sent; every value is a sum, so summing merged series is exact.
struct MetricsLabelBounds: Sendable, Equatable {
    /// Model names that keep their label value.
    let models: Set<String>
    /// Key ids (as text) that keep their label value.
    let keys: Set<String>
    /// Values kept whatever is known: no model or no key was named, and the bucket itself.
    static let alwaysKept: Set<String> = ["none", "other"]
    /// What an unknown value becomes.
    static let other = "other"

    /// Bounds for `models` and `keys`; a model name also matches in the 100-byte cut the collector labels with.
    init(models: some Sequence<String>, keys: some Sequence<String>) {
        var known = Set<String>()
        for name in models {
            known.insert(name)
            known.insert(UsageWire.truncated(name, bytes: 100))
        }
        self.models = known
        self.keys = Set(keys)
    }

    /// `exposition` with unknown model and key labels as `other`, merged series summed in place of the first.
    func bound(_ exposition: [UInt8]) -> [UInt8] {
        var output: [String] = []
        var sums: [String: (line: Int, value: Double, integral: Bool)] = [:]
        for line in String(decoding: exposition, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        {
            guard let sample = Sample(line) else {
                output.append(String(line))
                continue
            }
            let labels = sample.labels.map { name, value in (name, keep(name, value) ? value : Self.other) }
            let series = sample.name + Self.render(labels)
            let integral = !sample.value.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
            if let seen = sums[series] {
                let total = seen.value + sample.number
                sums[series] = (seen.line, total, seen.integral && integral)
                output[seen.line] = series + " " + Self.format(total, integral: seen.integral && integral)
            } else {
                sums[series] = (output.count, sample.number, integral)
                output.append(series + " " + sample.value)
            }
        }
        return Array(output.joined(separator: "\n").utf8)
    }

    private func keep(_ label: String, _ value: String) -> Bool {
        switch label {
        case "model": return Self.alwaysKept.contains(value) || models.contains(value)
        case "key": return Self.alwaysKept.contains(value) || keys.contains(value)
        default: return true
        }
    }

    private static func format(_ value: Double, integral: Bool) -> String {
        integral && abs(value) < 9e15 ? String(Int64(value)) : String(value)
    }

    private static func render(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        let pairs = labels.map { name, value in
            var escaped = ""
            for character in value {
                switch character {
                case "\\": escaped += "\\\\"
                case "\"": escaped += "\\\""
                case "\n": escaped += "\\n"
                default: escaped.append(character)
                }
            }
            return "\(name)=\"\(escaped)\""
        }
        return "{" + pairs.joined(separator: ",") + "}"
    }

    /// One sample line with labels, `name{a="x",b="y"} value`; nil for comments, blank lines, lines without
    /// labels and anything it cannot read (those pass through unchanged).
    struct Sample {
        let name: String
        let labels: [(String, String)]
        let value: String
        let number: Double

        init?(_ line: Substring) {
            guard let open = line.firstIndex(of: "{"), !line.hasPrefix("#") else { return nil }
            name = String(line[..<open])
            var labels: [(String, String)] = []
            var index = line.index(after: open)
            while index < line.endIndex, line[index] != "}" {
                guard let equals = line[index...].firstIndex(of: "=") else { return nil }
                let label = String(line[index..<equals])
                index = line.index(after: equals)
                guard index < line.endIndex, line[index] == "\"" else { return nil }
                index = line.index(after: index)
                var value = ""
                while true {
                    guard index < line.endIndex else { return nil }
                    let character = line[index]
                    index = line.index(after: index)
                    if character == "\"" { break }
                    if character == "\\" {
                        guard index < line.endIndex else { return nil }
                        let escaped = line[index]
                        index = line.index(after: index)
                        value.append(escaped == "n" ? "\n" : escaped)
                    } else {
                        value.append(character)
                    }
                }
                labels.append((label, value))
                if index < line.endIndex, line[index] == "," { index = line.index(after: index) }
            }
            guard index < line.endIndex else { return nil }
            let rest = line[line.index(after: index)...].split(separator: " ", omittingEmptySubsequences: true)
            // A timestamp after the value would not survive the merge: leave such lines alone.
            guard rest.count == 1, let number = Double(rest[0]) else { return nil }
            self.labels = labels
            value = String(rest[0])
            self.number = number
        }
    }
}
