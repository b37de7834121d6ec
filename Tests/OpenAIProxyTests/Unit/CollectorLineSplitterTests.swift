import Testing

@testable import StatsCollector

/// The collector's cutting of a worker's byte stream into lines.
@Suite("Collector line splitter")
struct CollectorLineSplitterTests {
    /// The lines `reads` complete, read one after another through one splitter, and whether all were accepted.
    private func lines(_ reads: [String], maximum: Int = 64) -> (lines: [String], accepted: Bool) {
        var splitter = UsageLineSplitter(maximumLineBytes: maximum)
        var found: [String] = []
        var accepted = true
        for read in reads {
            var bytes = Array(read.utf8)
            accepted =
                bytes.withUnsafeMutableBytes { raw in
                    splitter.split(UnsafeRawBufferPointer(raw)) { found.append(String(decoding: $0, as: UTF8.self)) }
                } && accepted
        }
        return (found, accepted)
    }

    @Test("several lines in one read, lines split across reads, empty lines, and a tail kept for the next read")
    func splits() {
        #expect(lines(["a\nbb\nccc\n"]).lines == ["a", "bb", "ccc"])
        #expect(lines(["ab", "c\nd", "e", "f\n"]).lines == ["abc", "def"])
        #expect(lines(["\n\nx\n"]).lines == ["", "", "x"])
        #expect(lines(["one\ntw"]).lines == ["one"])
        #expect(lines(["", "x", "", "\n"]).lines == ["x"])
    }

    @Test("an unfinished line longer than the limit is refused, within one read or across several")
    func refusesOverlongLines() {
        let long = String(repeating: "x", count: 64)
        #expect(lines([long + "x"], maximum: 64).accepted == false)
        #expect(lines([String(long.prefix(40)), String(long.prefix(40))], maximum: 64).accepted == false)
        #expect(lines([long + "\n"], maximum: 64) == ([long], true))
    }
}
