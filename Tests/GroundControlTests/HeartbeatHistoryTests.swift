import Fleet
import Foundation
import GroundControl
import SQLKit
import Testing

/// Heartbeat history: the newest `heartbeatsKept` per satellite, each image list stored once
/// (content-addressed) however many heartbeats and satellites report it, and swept when no
/// kept heartbeat names it any more. On SQLite and on PostgreSQL.
@Suite struct HeartbeatHistoryTests {
    static func count(_ repository: FleetRepository, _ table: String) async throws -> Int64 {
        try await repository.database.withDatabase { db in
            try await db.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table)").first()?.decode(column: "n", as: Int64.self)
                ?? -1
        }
    }

    static func images(_ tag: String) -> [CachedImage] {
        (0..<20).map {
            CachedImage(reference: "reg.example/ships/app-\($0):\(tag)@sha256:" + String(repeating: "\($0 % 10)", count: 64), sizeBytes: Int64($0) << 20)
        }
    }

    @Test(arguments: TestDatabases.Kind.enabled)
    func retentionBoundsRowsAndImageListsAreStoredOnce(kind: TestDatabases.Kind) async throws {
        let repository = try await TestDatabases.open(kind)
        defer { Task { await repository.database.shutdown() } }
        for name in ["edge-01", "edge-02"] {
            _ = try await repository.createSatellite(name: name, groups: [], configName: nil)
        }
        let kept = FleetRepository.heartbeatsKept
        // edge-01 reports list A, then list B for its last 3 heartbeats; edge-02 list A.
        for beat in 0..<(kept + 5) {
            let list = beat >= kept + 2 ? Self.images("b") : Self.images("a")
            try await repository.recordHeartbeat(
                satellite: "edge-01",
                Heartbeat(name: "edge-01", activity: "beat \(beat)", imageCount: list.count, cachedImages: list))
            if beat < 3 {
                try await repository.recordHeartbeat(
                    satellite: "edge-02", Heartbeat(name: "edge-02", imageCount: 20, cachedImages: Self.images("a")))
            }
            try await Task.sleep(nanoseconds: 2_000_000)  // distinct received_at_ms
        }
        #expect(try await Self.count(repository, "gc_heartbeats") == Int64(kept + 3))
        #expect(try await Self.count(repository, "gc_image_sets") == 2)

        let history = try await repository.heartbeats(satellite: "edge-01", limit: kept)
        #expect(history.count == kept)
        #expect(history.first?.report.activity == "beat \(kept + 4)")
        #expect(history.first?.report.cachedImages == Self.images("b"))
        #expect(history[3].report.cachedImages == Self.images("a"))
        #expect(history.last?.report.activity == "beat 5")
        #expect(try await repository.heartbeats(satellite: "edge-02").first?.report.cachedImages == Self.images("a"))

        // Once no kept heartbeat names list A, the sweep drops it; list B stays.
        _ = try await repository.deleteSatellite("edge-02")
        for beat in 0..<kept {
            try await repository.recordHeartbeat(
                satellite: "edge-01", Heartbeat(name: "edge-01", activity: "again \(beat)", imageCount: 20, cachedImages: Self.images("b")))
            try await Task.sleep(nanoseconds: 2_000_000)
        }
        try await repository.sweepImageSets()
        #expect(try await Self.count(repository, "gc_image_sets") == 1)
        #expect(try await repository.heartbeats(satellite: "edge-01", limit: 1).first?.report.cachedImages == Self.images("b"))
    }
}
