import Testing

@testable import Shared

/// `ObjectStoring.list` on every engine: the records a list endpoint shows, one token's of one kind in list order
/// from a cursor.
@Suite("Object store: lists")
struct ObjectStoreListTests {
    private static func object(
        _ id: String, kind: String = "file", token: Int64 = 1, at: Int64, expires: Int64 = 1_000_000
    ) -> StoredObject {
        StoredObject(id: id, kind: kind, keyID: 1, tokenID: token, createdAt: at, expiresAt: expires)
    }

    /// Token 1's files `f1`…`f5` (`f3` and `f4` created in the same millisecond), with another kind, another
    /// token's file and an expired file among them.
    private static let records: [StoredObject] = [
        object("f1", at: 100), object("f2", at: 200), object("f4", at: 300), object("f3", at: 300),
        object("f5", at: 400), object("b1", kind: "batch", at: 250), object("g1", token: 2, at: 350),
        object("f0", at: 50, expires: 500), object("vs-Z", kind: "vector_store", at: 20),
        object("vs_a", kind: "vector_store", at: 20),
    ]

    private static func query(
        newestFirst: Bool = true, after: StoredObject? = nil, limit: Int = 10, kind: String = "file"
    ) -> ObjectListQuery {
        ObjectListQuery(
            tokenID: 1, kind: kind, newestFirst: newestFirst, after: after.map(ObjectListQuery.Cursor.init),
            limit: limit, now: 1000)
    }

    @Test(
        "newest first or oldest first, by time then id; only the token's live records of the kind",
        arguments: StoreEngine.tested)
    func order(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.objects.apply(Self.records.map { .created($0) })
            #expect(try await stores.objects.list(Self.query()).map(\.id) == ["f5", "f4", "f3", "f2", "f1"])
            #expect(
                try await stores.objects.list(Self.query(newestFirst: false)).map(\.id) == [
                    "f1", "f2", "f3", "f4", "f5",
                ])
            #expect(try await stores.objects.list(Self.query(kind: "batch")).map(\.id) == ["b1"])
            // Ids tie-break byte by byte ('-' before '_'), whatever the database's locale.
            let ties = try await stores.objects.list(Self.query(newestFirst: false, kind: "vector_store"))
            #expect(ties.map(\.id) == ["vs-Z", "vs_a"])
            #expect(try await stores.objects.list(Self.query(kind: "container")).isEmpty)
            // The expired record shows again for a read at a time before its expiry.
            var earlier = Self.query(newestFirst: false, limit: 1)
            earlier.now = 400
            #expect(try await stores.objects.list(earlier).map(\.id) == ["f0"])
        }
    }

    @Test(
        "a read continues after its cursor (ties in time broken by id) and stops at its limit",
        arguments: StoreEngine.tested)
    func cursor(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.objects.apply(Self.records.map { .created($0) })
            let byID = Dictionary(uniqueKeysWithValues: Self.records.map { ($0.id, $0) })
            #expect(try await stores.objects.list(Self.query(limit: 2)).map(\.id) == ["f5", "f4"])
            #expect(try await stores.objects.list(Self.query(after: byID["f4"], limit: 2)).map(\.id) == ["f3", "f2"])
            #expect(try await stores.objects.list(Self.query(after: byID["f2"], limit: 2)).map(\.id) == ["f1"])
            #expect(try await stores.objects.list(Self.query(after: byID["f1"])).isEmpty)
            #expect(
                try await stores.objects.list(Self.query(newestFirst: false, after: byID["f3"])).map(\.id) == [
                    "f4", "f5",
                ])
            // A cursor between records (another token's) still places the read.
            #expect(try await stores.objects.list(Self.query(after: byID["g1"])).map(\.id) == ["f4", "f3", "f2", "f1"])
        }
    }
}
