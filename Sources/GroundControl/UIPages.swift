import Fleet
import FoundationEssentials
import OCICore
import Hummingbird

/// The HTML of the fleet page. Every value that came from a database row, a heartbeat or a
/// request goes through `escape` before it reaches the page.
enum FleetPage {
    /// State → the words an operator reads.
    static let stateNames = ["in_sync": "in sync", "drifting": "drifting", "stale": "stale", "never_seen": "never seen"]
    static let stateOrder = ["in_sync", "drifting", "stale", "never_seen"]
    /// The overview's extra filter (`/ui/?state=budget_spent`): satellites whose newest
    /// heartbeat says the day's or the month's WAN budget has nothing left.
    static let budgetSpent = "budget_spent"

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// A value for a URL path segment (names are validated already; this is belt and braces).
    static func pathSegment(_ text: String) -> String {
        escape(PercentEncoding.encode(text))
    }

    /// `value` with exactly one decimal ("3.0", "12.5"), as the pages show sizes and CPU.
    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int64((value * 10).rounded())
        return "\(tenths / 10).\(abs(tenths % 10))"
    }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : "\(oneDecimal(value)) \(units[unit])"
    }

    /// Reads the RFC 3339 times of one page against one "now".
    struct Clock {
        let now = MonotonicClock.wallNow() / 1_000_000_000

        /// "2026-12-05T14:00:00Z (42 s ago)".
        func seen(_ rfc3339: String?) -> String {
            guard let rfc3339 else { return "never" }
            guard let seconds = UTCTime.parse(rfc3339) else { return escape(rfc3339) }
            let ago = max(0, now - seconds)
            let text =
                ago < 120 ? "\(ago) s ago" : ago < 7200 ? "\(ago / 60) min ago" : ago < 172_800 ? "\(ago / 3600) h ago"
                : "\(ago / 86400) days ago"
            return "<time datetime=\"\(escape(rfc3339))\">\(escape(rfc3339))</time> <span class=\"muted\">(\(text))</span>"
        }
    }

    static func badge(_ state: String) -> String {
        "<span class=\"badge \(escape(state))\" data-state=\"\(escape(state))\">\(escape(stateNames[state] ?? state))</span>"
    }

    static func short(_ digest: String) -> String {
        guard !digest.isEmpty else { return "<span class=\"muted\">–</span>" }
        let shown = digest.hasPrefix("sha256:") ? String(digest.prefix(19)) + "…" : digest
        return "<code title=\"\(escape(digest))\">\(escape(shown))</code>"
    }

    static let style = """
        :root{--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--none:#57606a;--line:#d0d7de;--bg:#f6f8fa}
        *{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328}
        header{display:flex;align-items:center;gap:1em;padding:.6em 1.2em;background:#24292f;color:#fff}
        header h1{font-size:1.1em;margin:0;flex:1}header a{color:#fff;text-decoration:none}
        header form{margin:0}header button{background:none;border:1px solid #8c959f;color:#fff;border-radius:4px;padding:.2em .7em;cursor:pointer}
        main{padding:1em 1.2em;max-width:1200px}
        h2{font-size:1.05em;margin:1.4em 0 .5em}
        .counters{display:flex;flex-wrap:wrap;gap:.7em;margin:.4em 0 1em}
        .counter{display:block;min-width:8.5em;padding:.6em .9em;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:inherit;text-decoration:none}
        .counter b{display:block;font-size:1.8em;line-height:1.1}
        .counter.in_sync b{color:var(--ok)}.counter.drifting b{color:var(--warn)}.counter.stale b{color:var(--bad)}.counter.never_seen b{color:var(--none)}
        .counter.active{outline:2px solid #0969da}
        table{border-collapse:collapse;width:100%;margin-bottom:1em}
        th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid var(--line);vertical-align:top}
        th{background:var(--bg);font-weight:600}
        .badge{display:inline-block;padding:0 .55em;border-radius:1em;color:#fff;font-size:.9em;white-space:nowrap}
        .badge.in_sync{background:var(--ok)}.badge.drifting{background:var(--warn)}.badge.stale{background:var(--bad)}.badge.never_seen{background:var(--none)}.badge.budget_spent{background:var(--bad)}
        .counter.budget_spent b{color:var(--bad)}
        code{font:12px ui-monospace,monospace}.muted{color:#57606a}time{white-space:nowrap}
        ul.plain{margin:0;padding-left:1.1em}
        dl{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1.2em}dt{font-weight:600}dd{margin:0}
        .login{max-width:22em;margin:4em auto;padding:1.4em;border:1px solid var(--line);border-radius:8px;background:var(--bg)}
        .login label{display:block;margin:.7em 0 .2em}.login input{width:100%;padding:.45em;font:inherit}
        .login button{margin-top:1em;padding:.5em 1.2em;font:inherit;cursor:pointer}
        .error{color:var(--bad);font-weight:600}
        """

    static func document(title: String, user: UIUser?, body: String) -> String {
        var header = "<header><h1><a href=\"/ui/\">ground-control · fleet</a></h1>"
        if let user {
            header += """
                <span>\(escape(user.name))\(user.role.isEmpty ? "" : " <span class=\"muted\">(\(escape(user.role)))</span>")</span>\
                <form method="post" action="/ui/logout"><input type="hidden" name="csrf" value="\(escape(user.csrf))">\
                <button type="submit" id="logout">Log out</button></form>
                """
        }
        header += "</header>"
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title><style>\(style)</style></head>
            <body>\(header)<main>
            \(body)
            </main></body></html>

            """
    }

    static func login(csrf: String, message: String?) -> String {
        let error = message.map { "<p class=\"error\" id=\"login-error\">\(escape($0))</p>" } ?? ""
        return document(
            title: "Sign in · ground-control", user: nil,
            body: """
                <form class="login" method="post" action="/ui/login" id="login">
                <h2>Sign in</h2>\(error)
                <input type="hidden" name="csrf" value="\(escape(csrf))">
                <label for="username">User name</label><input id="username" name="username" autocomplete="username" required autofocus>
                <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
                <button type="submit" id="sign-in">Sign in</button>
                </form>
                """)
    }

    static func error(user: String?, csrf: String, status: HTTPResponse.Status, message: String) -> String {
        document(
            title: "\(status.code) · ground-control", user: user.map { UIUser(name: $0, role: "", csrf: csrf) },
            body: """
                <h2>\(status.code) \(escape(status.reasonPhrase))</h2><p class="error">\(escape(message))</p>
                <p><a href="/ui/">Back to the fleet</a></p>
                """)
    }

    static func overview(
        user: UIUser, satellites: [SatelliteView], groups: [GroupView], filter: String?, published: [String: String]
    ) -> String {
        let clock = Clock()
        var counts: [String: Int] = [:]
        for s in satellites { counts[s.state, default: 0] += 1 }
        var body = "<section class=\"counters\" id=\"counters\">"
        body += counter(id: "total", label: "satellites", count: satellites.count, href: "/ui/", active: filter == nil)
        for state in stateOrder {
            body += counter(
                id: state, label: stateNames[state] ?? state, count: counts[state] ?? 0, href: "/ui/?state=\(state)",
                active: filter == state)
        }
        body += counter(
            id: budgetSpent, label: "budget spent", count: satellites.filter { $0.link?.budgetSpent == true }.count,
            href: "/ui/?state=\(budgetSpent)", active: filter == budgetSpent)
        body += counter(id: "groups", label: "groups", count: groups.count, href: "#groups", active: false)
        body += "</section>"

        let shown = satellites.filter {
            filter == nil || $0.state == filter || (filter == budgetSpent && $0.link?.budgetSpent == true)
        }
        body += "<h2>Satellites"
        if let filter {
            let name = filter == budgetSpent ? "WAN budget spent" : stateNames[filter] ?? filter
            body += " — \(escape(name)) <a href=\"/ui/\">(show all)</a>"
        }
        body += "</h2>"
        if shown.isEmpty {
            body += "<p class=\"muted\" id=\"no-satellites\">No satellites\(filter == nil ? " yet" : " in this state").</p>"
        } else {
            body += """
                <table id="satellites"><thead><tr><th>Satellite</th><th>State</th><th>Groups</th><th>Config</th>\
                <th>WAN</th><th>Last seen</th></tr></thead><tbody>
                """
            for s in shown {
                body += """
                    <tr data-satellite="\(escape(s.name))"><td><a href="/ui/satellites/\(pathSegment(s.name))">\(escape(s.name))</a></td>\
                    <td>\(badge(s.state))</td><td>\(s.groups.map(escape).joined(separator: ", "))</td>\
                    <td>\(escape(s.configName ?? "–"))</td><td>\(linkSummary(s.link))</td><td>\(clock.seen(s.lastSeen))</td></tr>
                    """
            }
            body += "</tbody></table>"
        }

        body += "<h2 id=\"groups\">Groups and their images</h2>"
        if groups.isEmpty {
            body += "<p class=\"muted\">No groups yet.</p>"
        } else {
            body += """
                <table id="group-table"><thead><tr><th>Group</th><th>Images</th><th>Satellites</th>\
                <th>State artifact</th></tr></thead><tbody>
                """
            for g in groups {
                let images = g.artifacts.filter(\.isWantedImage).map { a in
                    var ref = escape(a.repository)
                    if !a.tag.isEmpty { ref += ":" + a.tag.map(escape).joined(separator: ",") }
                    return "<li>\(ref) \(a.digest.isEmpty ? "" : short(a.digest))</li>"
                }
                body += """
                    <tr data-group="\(escape(g.group))"><td>\(escape(g.group))</td>\
                    <td>\(images.isEmpty ? "<span class=\"muted\">none</span>" : "<ul class=\"plain\">" + images.joined() + "</ul>")</td>\
                    <td>\(g.satellites.map { "<a href=\"/ui/satellites/\(pathSegment($0))\">\(escape($0))</a>" }.joined(separator: ", "))</td>\
                    <td>\(short(published[FleetNames.groupStateRepository(g.group)] ?? ""))</td></tr>
                    """
            }
            body += "</tbody></table>"
        }
        return document(title: "Fleet · ground-control", user: user, body: body)
    }

    /// The overview's WAN cell: bytes so far, and the budget when one is set.
    static func linkSummary(_ link: LinkUsage?) -> String {
        guard let link else { return "<span class=\"muted\">–</span>" }
        var parts: [String] = []
        if let wan = link.wanBytes { parts.append(bytes(wan)) }
        if link.window == "closed" { parts.append("<span class=\"muted\">window closed</span>") }
        if link.budgetSpent {
            parts.append("<span class=\"badge budget_spent\" data-budget=\"spent\">budget spent</span>")
        } else if let left = [link.dayLeft, link.monthLeft].compactMap({ $0 }).min() {
            parts.append("<span class=\"muted\">\(bytes(left)) left</span>")
        }
        return parts.isEmpty ? "<span class=\"muted\">–</span>" : parts.joined(separator: " ")
    }

    /// The detail page's link rows: WAN/LAN bytes, window, budget used and left.
    static func linkRows(_ link: LinkUsage) -> String {
        func figure(_ value: Int64?) -> String { value.map(bytes) ?? "<span class=\"muted\">not reported</span>" }
        func budget(_ used: Int64?, _ left: Int64?) -> String {
            let usedText = "\(figure(used)) used"
            guard let left else { return "\(usedText), <span class=\"muted\">no limit</span>" }
            let leftText = left == 0 ? "<span class=\"error\">nothing left</span>" : "\(bytes(left)) left"
            return "\(usedText), \(leftText)"
        }
        var rows = "<dt>WAN bytes</dt><dd id=\"wan-bytes\">\(figure(link.wanBytes))</dd>"
        rows += "<dt>LAN bytes</dt><dd id=\"lan-bytes\">\(figure(link.lanBytes))</dd>"
        rows += "<dt>Sync window</dt><dd id=\"wan-window\">\(escape(link.window ?? "not reported"))</dd>"
        rows += "<dt>WAN budget today</dt><dd id=\"budget-day\">\(budget(link.dayUsed, link.dayLeft))</dd>"
        rows += "<dt>WAN budget this month</dt><dd id=\"budget-month\">\(budget(link.monthUsed, link.monthLeft))</dd>"
        if link.budgetSpent {
            rows += "<dt></dt><dd id=\"budget-spent\" class=\"error\">WAN budget spent: no WAN byte until it renews</dd>"
        }
        return rows
    }

    static func counter(id: String, label: String, count: Int, href: String, active: Bool) -> String {
        """
        <a class="counter \(id)\(active ? " active" : "")" id="count-\(id)" href="\(escape(href))"><b>\(count)</b>\(escape(label))</a>
        """
    }

    static func detail(
        user: UIUser, satellite s: SatelliteView, status: SatelliteStatusView, heartbeats: [HeartbeatView],
        published: [String: String]
    ) -> String {
        let clock = Clock()
        let last = heartbeats.first?.report
        let statePublished = published[FleetNames.satelliteStateRepository(s.name)] ?? ""
        let configPublished = s.configName.flatMap { published[FleetNames.configStateRepository($0)] } ?? ""
        func applied(_ reported: String?, _ wanted: String) -> String {
            guard let reported, !reported.isEmpty else { return "" }
            if reported == wanted { return " <span class=\"muted\">(applied)</span>" }
            return " <span class=\"error\">(satellite has \(short(reported)))</span>"
        }
        var body = "<h2 id=\"satellite-name\">\(escape(s.name)) \(badge(s.state))</h2><dl id=\"summary\">"
        body += "<dt>Last seen</dt><dd>\(clock.seen(s.lastSeen))</dd>"
        body += "<dt>Groups</dt><dd>\(s.groups.isEmpty ? "<span class=\"muted\">none</span>" : s.groups.map(escape).joined(separator: ", "))</dd>"
        body += "<dt>Config</dt><dd>\(escape(s.configName ?? "–"))</dd>"
        body += "<dt>Registry user</dt><dd><code>\(escape(s.robotName))</code></dd>"
        body += "<dt>State artifact</dt><dd>\(short(statePublished))\(applied(last?.latestStateDigest, statePublished))</dd>"
        body += "<dt>Config artifact</dt><dd>\(short(configPublished))\(applied(last?.latestConfigDigest, configPublished))</dd>"
        if let last {
            body += "<dt>Storage used</dt><dd id=\"storage\">\(bytes(Int64(clamping: last.storageUsedBytes)))</dd>"
            body += "<dt>Memory used</dt><dd>\(bytes(Int64(clamping: last.memoryUsedBytes)))</dd>"
            body += "<dt>Last activity</dt><dd id=\"activity\">\(escape(last.activity))</dd>"
        }
        if let link = status.link { body += linkRows(link) }
        body += "</dl>"

        body += "<h2>Desired images</h2>"
        let missing = Set(status.missing)
        if status.desired.isEmpty {
            body += "<p class=\"muted\" id=\"desired\">None: the satellite is in no group with images.</p>"
        } else {
            body += "<ul id=\"desired\">"
            for image in status.desired {
                body +=
                    missing.contains(image)
                    ? "<li data-missing=\"true\"><code>\(escape(image))</code> <span class=\"error\">missing</span></li>"
                    : "<li><code>\(escape(image))</code> <span class=\"muted\">present</span></li>"
            }
            body += "</ul>"
        }
        if !status.unexpected.isEmpty {
            body += "<p>Held but not desired: "
                + status.unexpected.map { "<code>\(escape($0))</code>" }.joined(separator: ", ") + "</p>"
        }

        body += "<h2>Images it reported</h2>"
        if let last, !last.cachedImages.isEmpty {
            body += "<table id=\"images\"><thead><tr><th>Reference</th><th>Size</th></tr></thead><tbody>"
            for image in last.cachedImages {
                body += "<tr><td><code>\(escape(image.reference))</code></td><td>\(bytes(image.sizeBytes))</td></tr>"
            }
            body += "</tbody></table>"
        } else {
            body += "<p class=\"muted\">None reported.</p>"
        }

        body += "<h2>Last heartbeats</h2>"
        if heartbeats.isEmpty {
            body += "<p class=\"muted\" id=\"heartbeats\">No heartbeat yet.</p>"
        } else {
            body += """
                <table id="heartbeats"><thead><tr><th>Received</th><th>State digest</th><th>Config digest</th>\
                <th>Images</th><th>Storage</th><th>Memory</th><th>CPU</th><th>Last sync</th><th>Activity</th></tr></thead><tbody>
                """
            for h in heartbeats {
                let r = h.report
                body += """
                    <tr><td>\(clock.seen(h.receivedAt))</td><td>\(short(r.latestStateDigest))</td><td>\(short(r.latestConfigDigest))</td>\
                    <td>\(r.imageCount)</td><td>\(bytes(Int64(clamping: r.storageUsedBytes)))</td>\
                    <td>\(bytes(Int64(clamping: r.memoryUsedBytes)))</td><td>\(oneDecimal(r.cpuPercent)) %</td>\
                    <td>\(r.lastSyncDurationMs) ms</td><td>\(escape(r.activity))</td></tr>
                    """
            }
            body += "</tbody></table>"
        }
        return document(title: "\(s.name) · ground-control", user: user, body: body)
    }
}
