import Logging
import Synchronization
import Testing

@testable import Shared

/// `PostgresChangeListener`: a change workers route on, made by any process, is heard at once; a lost connection
/// is listened on again, with one wake-up for what was missed meanwhile.
@Suite("PostgreSQL change notifications")
struct ChangeListenerTests {
    @Test(
        "pool and object changes are heard; after its session is killed it listens again, waking once for what it missed",
        arguments: StoreEngine.tested.filter { $0 == .postgresql })
    func notifications(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            #expect(stores.storeSet.changeListener != nil)
            let database = try #require(stores.storeSet.postgresql)
            let heard = Mutex(0)
            let listening = Task {
                await PostgresChangeListener(database: database, retry: .milliseconds(50)).run(
                    logger: Logger(label: "test.listen")
                ) { heard.withLock { $0 += 1 } }
            }
            defer { listening.cancel() }
            // Once when it starts listening.
            #expect(await eventually { heard.withLock { $0 } == 1 })
            let waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'"
            #expect(await eventually { (try? await stores.integer(waiting)) == 1 })

            _ = try await stores.keys.add(name: "k", value: "sk-notify-aaaaaaaa-0001", status: .active)
            #expect(await eventually { heard.withLock { $0 } == 2 }, "a key added (one transaction, one wake-up)")
            try await stores.execute("UPDATE object_generation SET generation = generation + 1")
            #expect(await eventually { heard.withLock { $0 } == 3 }, "an operator's object change")

            let pid = try #require(
                try await stores.integer("SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'"))
            try await stores.execute("SELECT pg_terminate_backend(\(pid))")
            #expect(await eventually { heard.withLock { $0 } == 4 }, "listening again, for what it may have missed")
            try await stores.execute(
                "INSERT INTO settings (name, value, updated_at) VALUES ('max_body_bytes', '4096', 0)")
            #expect(await eventually { heard.withLock { $0 } == 5 }, "heard on the new session")
        }
    }
}
