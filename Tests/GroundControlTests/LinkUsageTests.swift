import Fleet
import Foundation
import Hummingbird
import HummingbirdTesting
import JSONCoding
import Testing

@testable import GroundControl

/// The link figures a satellite appends to its heartbeat's `activity` (docs/sync.md
/// "Windows and budgets"): parsed when Ground Control shows a satellite, in the API's `link`
/// object and on the fleet page.
@Suite struct LinkUsageTests {
    /// Exactly what satellite-lite's `WANUsage.heartbeatText` sends, after other phrases.
    static let budgeted =
        "synced 2 images in 1.2 s; wan_bytes=52428800 lan_bytes=1048576 wan_window=open"
        + " wan_day_used=52428800 wan_day_left=0 wan_month_used=73400320 wan_month_left=975175680"
    static let unlimited =
        "idle; wan_bytes=1000 lan_bytes=0 wan_window=closed wan_day_used=1000 wan_day_left=unlimited"
        + " wan_month_used=1000 wan_month_left=unlimited"

    @Test func parsesTheSatellitesLine() {
        let usage = LinkUsage.parse(activity: Self.budgeted)
        #expect(
            usage
                == LinkUsage(
                    wanBytes: 52_428_800, lanBytes: 1_048_576, window: "open", dayUsed: 52_428_800, dayLeft: 0,
                    monthUsed: 73_400_320, monthLeft: 975_175_680))
        #expect(usage?.budgetSpent == true)

        let free = LinkUsage.parse(activity: Self.unlimited)
        #expect(free == LinkUsage(wanBytes: 1000, lanBytes: 0, window: "closed", dayUsed: 1000, monthUsed: 1000))
        #expect(free?.dayLeft == nil && free?.monthLeft == nil && free?.budgetSpent == false)

        // Only the month spent is spent too.
        #expect(LinkUsage.parse(activity: "wan_day_left=5 wan_month_left=0")?.budgetSpent == true)
    }

    @Test func ignoresWhatItCannotRead() {
        // No figures at all: no link object (older satellites, Harbor's own satellite).
        for text in ["", "idle", "synced 3 images; pulled library/nginx:1.27", "a=b c=d", "wan_bytes=", "=5"] {
            #expect(LinkUsage.parse(activity: text) == nil, "\(text)")
        }
        // Garbled values are left out; the readable ones stay.
        let usage = LinkUsage.parse(
            activity: "wan_bytes=-5 lan_bytes=12x wan_window=ajar wan_day_used=99999999999999999999 "
                + "wan_day_left=1e3 wan_month_used=+7 wan_month_left=42 wan_bytes==3")
        #expect(usage == LinkUsage(monthLeft: 42))
        #expect(LinkUsage.parse(activity: "wan_bytes=9223372036854775808")?.wanBytes == nil)
        #expect(LinkUsage.parse(activity: "wan_bytes=9223372036854775807")?.wanBytes == Int64.max)
        // A key twice: the last one counts (the satellite appends its line last).
        #expect(LinkUsage.parse(activity: "wan_bytes=1; wan_bytes=2")?.wanBytes == 2)
        // Separators: "; " between phrases, tabs and newlines are whitespace too.
        #expect(LinkUsage.parse(activity: "x;wan_window=open\tlan_bytes=3\n")
            == LinkUsage(lanBytes: 3, window: "open"))
    }

    /// Record a heartbeat carrying `activity` for a new satellite `name`.
    static func report(_ repository: FleetRepository, _ name: String, _ activity: String) async throws {
        _ = try await repository.createSatellite(name: name, groups: [], configName: nil)
        try await repository.recordHeartbeat(
            satellite: name, Heartbeat(name: name, activity: activity, stateReportInterval: "@every 00h00m30s"))
    }

    /// The API's detail, status and list routes carry `link` from the newest heartbeat, on
    /// SQLite and PostgreSQL; a satellite without figures has no `link`.
    @Test(arguments: TestDatabases.Kind.enabled)
    func apiShowsTheNewestHeartbeatsLink(kind: TestDatabases.Kind) async throws {
        let h = try await APITests.harness(kind)
        defer { Task { await h.repository.database.shutdown() } }
        _ = try await h.repository.createSatellite(name: "ship-1", groups: [], configName: nil)
        try await h.repository.recordHeartbeat(satellite: "ship-1", Heartbeat(name: "ship-1", activity: Self.unlimited))
        try await Task.sleep(for: .milliseconds(5))
        try await h.repository.recordHeartbeat(satellite: "ship-1", Heartbeat(name: "ship-1", activity: Self.budgeted))
        try await Self.report(h.repository, "ship-2", "idle")

        let expected: JSON = .object([
            ("wan_bytes", .number("52428800")), ("lan_bytes", .number("1048576")), ("window", .string("open")),
            ("day_used", .number("52428800")), ("day_left", .number("0")), ("month_used", .number("73400320")),
            ("month_left", .number("975175680")), ("budget_spent", .bool(true)),
        ])
        try await h.app.test(.router) { client in
            for uri in ["/api/satellites/ship-1", "/api/satellites/ship-1/status"] {
                try await client.execute(uri: uri, method: .get, headers: APITests.admin) { response in
                    #expect(response.status == .ok)
                    #expect(APITests.json(response)["link"] == expected, "\(uri)")
                }
            }
            try await client.execute(uri: "/api/satellites/ship-2/status", method: .get, headers: APITests.admin) {
                #expect(APITests.json($0)["link"] == nil)
                #expect(APITests.json($0)["heartbeat"] != nil)
            }
            try await client.execute(uri: "/api/satellites", method: .get, headers: APITests.admin) { response in
                guard case .array(let list) = APITests.json(response) else {
                    Issue.record("not a list")
                    return
                }
                #expect(list.count == 2)
                #expect(list.first?["link"] == expected)
                #expect(list.last?["link"] == nil)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(String(buffer: response.body).contains("\ngc_satellites_budget_spent 1\n"))
            }
        }
    }

    /// The fleet page: the overview counts and filters satellites whose budget is spent and
    /// shows WAN bytes; the detail shows WAN/LAN bytes, the window and the budget left.
    @Test func pagesShowTheLink() async throws {
        let repository = try await TestDatabases.open(.sqlite)
        defer { Task { await repository.database.shutdown() } }
        try await Self.report(repository, "ship-1", Self.budgeted)
        try await Self.report(repository, "ship-2", Self.unlimited)
        try await Self.report(repository, "ship-3", "idle; wan_bytes=<b>")
        let satellites = try await repository.listSatellites()
        let user = UIUser(name: "admin", role: "admin", csrf: "c")

        let all = FleetPage.overview(user: user, satellites: satellites, groups: [], filter: nil, published: [:])
        #expect(all.contains(#"id="count-budget_spent" href="/ui/?state=budget_spent"><b>1</b>budget spent"#))
        #expect(all.contains(#"<td>50.0 MiB <span class="badge budget_spent" data-budget="spent">budget spent</span></td>"#))
        #expect(all.contains(#"<td>1000 B <span class="muted">window closed</span></td>"#))
        #expect(all.contains(#"<td><span class="muted">–</span></td>"#))  // ship-3: nothing readable
        let spent = FleetPage.overview(
            user: user, satellites: satellites, groups: [], filter: FleetPage.budgetSpent, published: [:])
        #expect(spent.contains(#"data-satellite="ship-1""#))
        #expect(!spent.contains(#"data-satellite="ship-2""#) && !spent.contains(#"data-satellite="ship-3""#))
        #expect(spent.contains("WAN budget spent"))

        func detail(_ name: String) async throws -> String {
            let status = try await repository.satelliteStatus(name)
            return FleetPage.detail(
                user: user, satellite: try await repository.satellite(name), status: status,
                heartbeats: try await repository.heartbeats(satellite: name), published: [:])
        }
        let one = try await detail("ship-1")
        #expect(one.contains(#"<dd id="wan-bytes">50.0 MiB</dd>"#))
        #expect(one.contains(#"<dd id="lan-bytes">1.0 MiB</dd>"#))
        #expect(one.contains(#"<dd id="wan-window">open</dd>"#))
        #expect(one.contains(#"<dd id="budget-day">50.0 MiB used, <span class="error">nothing left</span></dd>"#))
        #expect(one.contains(#"<dd id="budget-month">70.0 MiB used, 930.0 MiB left</dd>"#))
        #expect(one.contains(#"id="budget-spent""#))
        let two = try await detail("ship-2")
        #expect(two.contains(#"<dd id="wan-window">closed</dd>"#))
        #expect(two.contains(#"<dd id="budget-day">1000 B used, <span class="muted">no limit</span></dd>"#))
        #expect(!two.contains(#"id="budget-spent""#))
        // A garbled line only: no link rows at all, and the raw text is escaped in the activity.
        let three = try await detail("ship-3")
        #expect(!three.contains(#"id="wan-bytes""#))
        #expect(three.contains("wan_bytes=&lt;b&gt;"))
    }
}
