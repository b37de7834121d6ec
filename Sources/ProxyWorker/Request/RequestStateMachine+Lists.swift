import HTTPServing
import NIOCore
import Shared

/// A list of recorded objects (`GET /v1/files` …): answered from the client token's own records, each object
/// fetched from the key that holds it (`ObjectListGathering`), never from one key's whole account.
extension RequestStateMachine {
    /// Starts gathering the list once the request may go on (its token's limits allowed it).
    mutating func startListing() -> Action {
        guard let listing else { return .none }
        state = .listingObjects
        return take(listing.start())
    }

    /// The token's records were read (`records`; nil: the database failed).
    mutating func objectRecordsRead(_ records: [StoredObject]?) -> Action {
        guard state == .listingObjects, listing != nil else { return .none }
        guard let records else {
            return fail(
                .serviceUnavailable, "The proxy could not read its object records; retry shortly.",
                code: "object_records_unavailable", retryAfter: 1)
        }
        return take(listing!.recordsRead(records))
    }

    /// The objects asked of their keys came back (`results`, in the order they were asked).
    mutating func listedObjectsFetched(_ results: [ObjectFetchResult]) -> Action {
        guard state == .listingObjects, listing != nil else { return .none }
        return take(listing!.fetched(results))
    }

    private mutating func take(_ step: ObjectListGathering.Step) -> Action {
        switch step {
        case .read(let query, let cursorID):
            return .readObjectRecords(query, cursorID: cursorID)
        case .fetch(let records):
            return .fetchListedObjects(records)
        case .answer(let body):
            state = .finished
            listing = nil
            return .answerList(body, outcome: RequestOutcome(status: 200, error: nil))
        case .fail(let answer):
            state = .finished
            listing = nil
            return .answerError(
                answer, close: !request.keepAlive,
                outcome: RequestOutcome(status: Int(answer.status.code), error: answer.body.code))
        }
    }
}
