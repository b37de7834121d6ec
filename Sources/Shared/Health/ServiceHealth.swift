/// The body of a `/healthz` answer (proxy port and admin port). The status stays 200 while the process serves:
/// a host that serves proxy traffic through a PostgreSQL outage stays in its load balancer, and the body says
/// `degraded` and why.
public enum ServiceHealth {
    /// `{"status":"ok"}`, with `"worker":N` for a worker; in a known outage
    /// `{"status":"degraded",…,"database":"unreachable"}`.
    public static func body(worker: Int? = nil, databaseUnreachable: Bool) -> String {
        let workerField = worker.map { ",\"worker\":\($0)" } ?? ""
        return databaseUnreachable
            ? "{\"status\":\"degraded\"\(workerField),\"database\":\"unreachable\"}"
            : "{\"status\":\"ok\"\(workerField)}"
    }
}
