import ContentStore
import OCICore
import SatelliteConfig
import Sync

/// `sync.windows` and `sync.budget` as the process's one ``WANGate`` for its store.
extension Settings {
    var wanPolicy: WANGate.Policy {
        WANGate.Policy(
            windows: SyncWindows(config.sync.windows.map { SyncWindows.Window(start: $0.start, end: $0.end) }),
            budget: WANBudget(perDay: config.sync.budget.perDay, perMonth: config.sync.budget.perMonth))
    }

    /// The store's `sync/wan.json`.
    var wanLedgerPath: String { StoreLayout(root: config.storage.path).wanLedger }

    /// Shared by every upstream client of the process (sync, proxy, mirrors).
    var wanGate: WANGate { WANGate.shared(ledgerPath: wanLedgerPath, policy: wanPolicy) }
}

extension WANGate.Snapshot {
    /// `status` lines: the window, the budget's use and what is left, WAN vs LAN bytes.
    func lines(now: Int64) -> [String] {
        var lines: [String] = []
        if windows.isEmpty {
            lines.append("WAN window: always open")
        } else {
            let change = windowChangesAt.map { windowOpen ? ", closes at \(WANGate.describe($0, now: now))" : ", opens at \(WANGate.describe($0, now: now))" } ?? ""
            lines.append("WAN window: \(windowOpen ? "open" : "closed")\(change) (\(windows.joined(separator: ", ")))")
        }
        if perDay == nil && perMonth == nil {
            lines.append("WAN budget: unlimited (today \(Units.formatSize(dayBytes)), this month \(Units.formatSize(monthBytes)))")
        } else {
            var parts: [String] = []
            if let perDay { parts.append("today \(Units.formatSize(dayBytes)) of \(Units.formatSize(perDay)), \(Units.formatSize(dayLeft ?? 0)) left") }
            if let perMonth { parts.append("this month \(Units.formatSize(monthBytes)) of \(Units.formatSize(perMonth)), \(Units.formatSize(monthLeft ?? 0)) left") }
            lines.append("WAN budget: \(parts.joined(separator: "; "))")
        }
        lines.append("link bytes: WAN \(Units.formatSize(wanBytes)), LAN \(Units.formatSize(lanBytes))")
        return lines
    }

    /// The heartbeat's link line (in `activity`): stable `key=value` names, bytes as integers.
    var heartbeatText: String {
        "wan_bytes=\(wanBytes) lan_bytes=\(lanBytes) wan_window=\(windowOpen ? "open" : "closed")"
            + " wan_day_used=\(dayBytes) wan_day_left=\(dayLeft.map(String.init) ?? "unlimited")"
            + " wan_month_used=\(monthBytes) wan_month_left=\(monthLeft.map(String.init) ?? "unlimited")"
    }

    /// Prometheus text for `/metrics`.
    var metricsText: String {
        func metric(_ name: String, _ type: String, _ help: String, _ value: Int64) -> String {
            "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        var text = metric("satellite_wan_bytes_total", "counter", "Body bytes received over the WAN (upstream and mirrors), store lifetime.", wanBytes)
        text += metric("satellite_lan_bytes_total", "counter", "Bytes moved on the site LAN (served to clients, from peers), store lifetime.", lanBytes)
        text += metric("satellite_wan_window_open", "gauge", "1 when the WAN may be used now (inside sync.windows, or none set).", windowOpen ? 1 : 0)
        if let windowChangesAt { text += metric("satellite_wan_window_change_timestamp_seconds", "gauge", "When the sync window next opens or closes.", windowChangesAt) }
        text += metric("satellite_wan_budget_day_used_bytes", "gauge", "WAN bytes counted today (local calendar day).", dayBytes)
        text += metric("satellite_wan_budget_month_used_bytes", "gauge", "WAN bytes counted this month (local calendar month).", monthBytes)
        if let perDay { text += metric("satellite_wan_budget_day_limit_bytes", "gauge", "sync.budget.perDay.", perDay) }
        if let dayLeft { text += metric("satellite_wan_budget_day_left_bytes", "gauge", "WAN bytes the daily budget still allows.", dayLeft) }
        if let perMonth { text += metric("satellite_wan_budget_month_limit_bytes", "gauge", "sync.budget.perMonth.", perMonth) }
        if let monthLeft { text += metric("satellite_wan_budget_month_left_bytes", "gauge", "WAN bytes the monthly budget still allows.", monthLeft) }
        return text
    }
}
