import Logging
import PostgresNIO

/// Hears, on a connection of its own, the notifications PostgreSQL sends when something workers route on
/// changed (keys, key health, tokens, models, settings, object records: schema v6), so a worker reloads at once
/// rather than at its next poll. The poll stays the safety net: a notification is a hint, never the only way a
/// change arrives.
public struct PostgresChangeListener: Sendable {
    /// The channel the schema's triggers notify.
    public static let channel = "openai_proxy_changes"
    /// The database listened to.
    let database: PostgresProxyDatabase
    /// How long after a lost or failed connection it connects again.
    var retry: Duration = .seconds(1)

    /// A listener on `database`.
    public init(database: PostgresProxyDatabase, retry: Duration = .seconds(1)) {
        self.database = database
        self.retry = retry
    }

    /// Calls `onChange` for every notification, and once each time it starts listening (changes made while it was
    /// not were not heard), until the task is cancelled; reconnects after `retry` when the connection is lost.
    public func run(logger: Logger, onChange: @escaping @Sendable () -> Void) async {
        var failing = false
        while !Task.isCancelled {
            do {
                let connection = try await database.dedicatedConnection(id: 2)
                do {
                    // The notification sequence ends when its connection does; cancelling closes it.
                    try await withTaskCancellationHandler {
                        try await connection.listen(on: Self.channel) { notifications in
                            if failing { logger.notice("listening for changes again") }
                            failing = false
                            onChange()
                            for try await _ in notifications { onChange() }
                        }
                    } onCancel: {
                        let closing: EventLoopFuture<Void> = connection.close()
                        closing.whenComplete { _ in }
                    }
                } catch {
                    // A connection must be closed before it is released, however listening ended.
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                if Task.isCancelled { return }
                // Said once per outage, not once per attempt.
                if !failing {
                    logger.warning(
                        "not listening for changes (the poll still sees them): \(PostgresErrorText.line(error))")
                }
                failing = true
            }
            try? await Task.sleep(for: retry)
        }
    }
}
