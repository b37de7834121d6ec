import Testing

@testable import Shared

@Suite("Worker load board")
struct WorkerLoadBoardTests {
    @Test("counts published through one mapping are seen through another, as between processes")
    func sharedCounts() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("worker-load")
        let first = try WorkerLoadBoard(path: path, slots: 3)
        let second = try WorkerLoadBoard(path: path, slots: 3)
        first.publish(7, slot: 0)
        second.publish(2, slot: 1)
        second.publish(3, slot: 2)
        #expect(second.connections(slot: 0) == 7)
        #expect(first.connections(slot: 1) == 2)
        #expect(first.isAhead(slot: 0), "7 is more than 2 past the least loaded (2)")
        #expect(!first.isAhead(slot: 1))
        first.publish(4, slot: 0)
        #expect(!second.isAhead(slot: 0), "4 is within the slack of 2")
        #expect(!first.isAhead(slot: 9), "slots past the board are never held back")
        #expect(try !WorkerLoadBoard(path: path, slots: 1).isAhead(slot: 0), "a lone worker is never held back")
    }
}
