import HTTPServing
import Hummingbird
import Shared

/// On PostgreSQL, answers `503 database_unavailable` instead of waiting on an outage: at once while the probe
/// knows one, and for a request already waiting on the database as soon as the probe learns of it (the pool's
/// lease would wait for as long as the server is down). A request that fails with an error of no known kind
/// while the probe finds the database gone gets the same 503, not a 500. Without a probe (SQLite) it only
/// passes requests on.
struct DatabaseOutageMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The admin process's probe; nil on SQLite.
    let probe: ReachabilityProbe?

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let probe else { return try await next(request, context) }
        let reachability = probe.reachability
        if reachability.isUnreachable { throw APIError.databaseUnavailable() }
        let answer = await withoutActuallyEscaping(next) { next in
            let call = RouteCall(run: next)
            return await reachability.unlessOutage { try await call.run(request, context) }
        }
        switch answer {
        case .success(let response):
            return response
        case nil:
            throw APIError.databaseUnavailable()
        case .failure(let error):
            if error is any HTTPResponseError || error is InputError { throw error }
            if reachability.isUnreachable { throw APIError.databaseUnavailable() }
            if await probe.checkOnce() == false { throw APIError.databaseUnavailable() }
            throw error
        }
    }

    /// The rest of the chain, handed to a child task. Unchecked: `withoutActuallyEscaping` gives a closure
    /// that `unlessOutage`'s task group calls once and awaits before `handle` returns, so it never outlives the
    /// middleware's call nor runs twice at once.
    private struct RouteCall: @unchecked Sendable {
        let run: (Request, Context) async throws -> Response
    }
}
