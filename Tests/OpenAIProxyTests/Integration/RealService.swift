import Testing

/// The suites that run the real binary as a process tree: one service at a time, so that several
/// multi-process services do not compete for the two cores a CI machine has and time each other out.
/// Unit suites still run in parallel beside them.
@Suite("Real service", .serialized)
enum RealService {}
