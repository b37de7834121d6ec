import Logging
import ServiceLifecycle

/// Runs `services` in a service group of their own while `body` runs, then shuts the group down gracefully
/// and waits until every service has returned.
func withRunningServices<T>(_ services: [any Service], _ body: () async throws -> T) async throws -> T {
    let group = ServiceGroup(configuration: .init(services: services, logger: Logger(label: "test")))
    let running = Task { try await group.run() }
    let result: T
    do {
        result = try await body()
    } catch {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        throw error
    }
    await group.triggerGracefulShutdown()
    try await running.value
    return result
}
