import GRDB

extension ProxyService {
    /// The service's database as a test writes to it while the service runs: waiting up to 5 s for the
    /// service's own writers instead of failing at once with SQLITE_BUSY.
    func writableDatabase() throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        return try DatabaseQueue(path: databasePath, configuration: configuration)
    }
}
