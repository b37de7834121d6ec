import Foundation
import Hummingbird
import Shared

extension StatsRoutes {
    /// Requests refused before a client token was known, over a period.
    struct RefusedView: Encodable {
        let period: String
        @NullEncoded var since: String?
        let total: Int64
        /// Every reason, zero when none was counted.
        let byReason: [String: Int64]

        enum CodingKeys: String, CodingKey { case period, since, total, byReason = "by_reason" }
    }

    /// `GET /api/stats/refused?period=…`: the per-minute counts the workers send, summed by reason.
    func registerRefused(on api: APIGroup) {
        api.on(.get, "stats/refused") { request, _ in
            let (period, since) = try Self.period(request, now: services.now())
            let counts = try await services.reading.refusedCounts(since: since)
            var byReason = Dictionary(uniqueKeysWithValues: RefusalReason.allCases.map { ($0.rawValue, Int64(0)) })
            for (reason, count) in counts where byReason[reason] != nil { byReason[reason] = count }
            return try JSONResponse.make(
                RefusedView(
                    period: period, since: since.map { ISOTime.format($0 * 1000) },
                    total: byReason.values.reduce(0, +), byReason: byReason))
        }
    }
}
