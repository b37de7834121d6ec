import Shared

/// The two listening sockets the supervisor binds before any child starts.
public struct PreparedSockets: Sendable {
    /// The proxy port, inherited by every worker.
    public let proxy: ListeningSocket
    /// The admin port, inherited by the admin server.
    public let admin: ListeningSocket
}

/// What the supervisor does before starting children: data directory, secrets, migrations, sockets.
public enum Startup {
    /// The outcome of preparing.
    public struct Prepared: Sendable {
        /// Sockets for the children.
        public let sockets: PreparedSockets
        /// The admin token when this start generated it (to be shown once), else nil.
        public let generatedAdminToken: String?
        /// The modes this start tightened in the data directory, to be logged.
        public let tightenedModes: [DataDirectoryModes.Change]
    }

    /// Why start-up could not proceed; one line for the operator.
    public struct Failure: Error, CustomStringConvertible {
        /// One line for the operator.
        public let description: String
    }

    /// Binds both ports, then creates the data directory and secrets when missing, migrates the SQLite database
    /// and tightens the data directory's modes (`DataDirectoryModes`).
    /// The ports come first: a start that cannot listen must not generate (and so never show) the admin token.
    public static func prepare(_ configuration: ProxyConfiguration) throws(Failure) -> Prepared {
        let proxy: ListeningSocket
        let admin: ListeningSocket
        do {
            proxy = try ListeningSocket.bind(configuration.proxyListen)
        } catch {
            throw Failure(description: error.description)
        }
        do {
            admin = try ListeningSocket.bind(configuration.adminListen)
        } catch {
            proxy.close()
            throw Failure(description: error.description)
        }
        let adminToken: (value: String, created: Bool)
        let tightened: [DataDirectoryModes.Change]
        do {
            try SecretMaterial.prepareDataDirectory(configuration)
            _ = try SecretMaterial.encryptionSecret(for: configuration, create: true)
            // PostgreSQL is migrated by the caller (asynchronously, under the migration lock every host takes).
            if configuration.database == .sqlite {
                _ = try ProxyDatabase.open(at: configuration.paths.database, migrate: true)
            }
            adminToken = try SecretMaterial.adminToken(for: configuration, create: true)
            tightened = try DataDirectoryModes.apply(configuration.paths)
        } catch let error as SecretFile.Failure {
            proxy.close()
            admin.close()
            throw Failure(description: error.description)
        } catch {
            proxy.close()
            admin.close()
            throw Failure(description: "database \(configuration.paths.database): \(PostgresErrorText.line(error))")
        }
        return Prepared(
            sockets: PreparedSockets(proxy: proxy, admin: admin),
            generatedAdminToken: adminToken.created ? adminToken.value : nil, tightenedModes: tightened)
    }
}
