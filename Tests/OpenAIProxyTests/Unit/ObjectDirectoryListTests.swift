import Testing

@testable import ProxyWorker
@testable import Shared

/// The records a list reads: the database's, plus those this worker created and has not read back yet, so that
/// a client lists what it just created.
@Suite("Object directory: lists")
struct ObjectDirectoryListTests {
    private static func object(_ id: String, token: Int64 = 1, kind: String = "file", at: Int64) -> StoredObject {
        StoredObject(id: id, kind: kind, keyID: 1, tokenID: token, createdAt: at, expiresAt: 10_000)
    }

    private static func query(limit: Int = 10, newestFirst: Bool = true) -> ObjectListQuery {
        ObjectListQuery(tokenID: 1, kind: "file", newestFirst: newestFirst, after: nil, limit: limit, now: 1000)
    }

    @Test("records created here and not stored yet join the database's, in list order, within the limit")
    func unstoredJoin() async throws {
        let directory = TemporaryDirectory()
        let database = try ProxyDatabase.open(at: directory.file("objects.db"), migrate: true)
        let store = ObjectStore(database: database)
        try await store.apply([.created(Self.object("f1", at: 100)), .created(Self.object("f2", at: 300))])
        let objects = ObjectDirectory(store: store)
        for created in [
            Self.object("f3", at: 200), Self.object("f4", at: 400), Self.object("g1", token: 2, at: 350),
            Self.object("b1", kind: "batch", at: 250),
        ] {
            #expect(objects.learn(created))
        }
        #expect(try await objects.list(Self.query(), cursorID: nil).map(\.id) == ["f4", "f2", "f3", "f1"])
        #expect(try await objects.list(Self.query(limit: 2), cursorID: nil).map(\.id) == ["f4", "f2"])
        #expect(try await objects.list(Self.query(newestFirst: false), cursorID: "f3").map(\.id) == ["f2", "f4"])
        #expect(try await objects.list(Self.query(), cursorID: "f2").map(\.id) == ["f3", "f1"])
        // Another token's id, or one never seen, is no cursor for this token.
        #expect(try await objects.list(Self.query(), cursorID: "g1").isEmpty)
        #expect(try await objects.list(Self.query(), cursorID: "file-unknown").isEmpty)

        // Read back by the refresher, a record is the database's alone (here it never reached it: it goes).
        objects.merge([Self.object("f4", at: 400)], upTo: 10)
        #expect(try await objects.list(Self.query(), cursorID: nil).map(\.id) == ["f2", "f3", "f1"])
        // A deleted one goes at once.
        objects.forget("f3")
        #expect(try await objects.list(Self.query(), cursorID: nil).map(\.id) == ["f2", "f1"])
        #expect(try await ObjectDirectory().list(Self.query(), cursorID: nil).isEmpty)
    }

    @Test("list order: by time, then id byte by byte; a cursor shows only what comes after it")
    func order() {
        let newest = Self.query()
        let dash = ObjectListQuery.Cursor(createdAt: 5, id: "file-B")
        let underscore = ObjectListQuery.Cursor(createdAt: 5, id: "file_a")
        let later = ObjectListQuery.Cursor(createdAt: 6, id: "file-A")
        #expect(newest.orders(later, before: underscore) && newest.orders(underscore, before: dash))
        #expect(!newest.orders(dash, before: dash))
        let oldest = Self.query(newestFirst: false)
        #expect(oldest.orders(dash, before: underscore) && oldest.orders(underscore, before: later))
        var after = oldest
        after.after = dash
        #expect(after.shows(Self.object("file_a", at: 5)) && !after.shows(Self.object("file-A", at: 5)))
        #expect(!after.shows(Self.object("file_z", token: 2, at: 9)))
        #expect(!after.shows(Self.object("file_z", kind: "batch", at: 9)))
        #expect(
            !after.shows(StoredObject(id: "file_z", kind: "file", keyID: 1, tokenID: 1, createdAt: 9, expiresAt: 1000)))
    }
}
