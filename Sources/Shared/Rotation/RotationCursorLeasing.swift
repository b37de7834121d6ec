/// The shared round-robin position's one operation, the same on every engine: `RotationCursor` (SQLite) and
/// `PostgresRotationCursor`, held to one behaviour by one suite run against both.
public protocol RotationCursorLeasing: Sendable {
    /// Reserves `count` consecutive positions for the caller alone: no other lease, from any process of any
    /// host, overlaps them.
    func lease(_ count: Int) async throws -> Range<Int64>
}
