import FleetLink
import SatelliteConfig
import Sync
import CommandParsing
import ContentStore
import OCICore
import TinyRegistry

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct StatusCommand: ConfigAndJSONCommand {
    static var spec: CommandSpec {
        CommandSpec(
            name: "status", abstract: "Desired vs present images, disk use, last sync, transfers in progress.",
            options: [.config, .json])
    }

    var options: ConfigOption
    var json: Bool

    struct Report: Encodable {
        struct Image: Encodable {
            var image: String
            var state: String
            var digest: String?
            var error: String?
        }
        var store: String
        var diskUse: Int64
        var quota: String
        var images: [Image]
        var transfers: [SyncStatus.Transfer]
        var lastSyncStarted: Int64?
        var lastSyncFinished: Int64?
        var lastSyncOK: Bool?
        var lastSyncError: String?
        var syncRunning: Bool
        var hooks: [HookBridge.RunSummary]
        var fleet: FleetLinkReport?
        /// The last bundle imported (bundles/applied.json) and the watch folder's last error.
        var bundle: BundleRecord?
        var bundleError: String?
        /// Every blob the store holds: `bundle create --have` leaves them out.
        var blobs: [String]
    }

    func run() throws {
        let settings = try Settings.load(configPath: options.config)
        let store = try BlobStore(configuration: settings.storeConfiguration)
        let sync = SyncStatus.read(store: store)
        var images: [Report.Image] = []
        for image in settings.config.state.images {
            let known = sync?.images.first { $0.image == image.description }
            let present: Digest? =
                image.tag.flatMap { store.resolveTag(image.repository, $0) }
                ?? image.digest.flatMap { store.manifestMediaType(image.repository, $0) != nil ? $0 : nil }
            images.append(
                .init(
                    image: image.description,
                    state: present != nil ? (known?.state == "syncing" ? "present, updating" : "present") : (known?.state ?? "missing"),
                    digest: present?.description, error: present == nil ? known?.error : nil))
        }
        if settings.config.state.images.isEmpty, let sync {
            images = sync.images.map { .init(image: $0.image, state: $0.state, digest: $0.digest, error: $0.error) }
        }
        let diskUse = GarbageCollector.diskUse(store: store)
        let running = sync?.running == true && sync?.pid.map { kill($0, 0) == 0 } == true
        let report = Report(
            store: store.root, diskUse: diskUse, quota: settings.quota.description, images: images,
            transfers: running ? sync?.transfers ?? [] : [], lastSyncStarted: sync?.lastSyncStarted,
            lastSyncFinished: sync?.lastSyncFinished, lastSyncOK: sync?.lastSyncOK, lastSyncError: sync?.lastSyncError,
            syncRunning: running, hooks: HookBridge.recentRuns(store: store),
            fleet: settings.config.groundControl.map { FleetLinkReport.read(storeRoot: store.root, groundControl: $0.url) },
            bundle: BundleRecord.read(store: store), bundleError: BundleWatcher.lastError(store: store),
            blobs: ((try? store.allBlobs()) ?? []).map(\.description).sorted())
        if json {
            try printJSON(report)
            return
        }
        print("store: \(report.store), \(Units.formatSize(diskUse)) used, quota \(report.quota)")
        if images.isEmpty { print("images: none desired") }
        for image in images {
            var line = "  \(image.image): \(image.state)"
            if let digest = image.digest { line += " \(digest)" }
            if let error = image.error { line += " (\(error))" }
            print(line)
        }
        if let finished = report.lastSyncFinished {
            let ago = Int64(time(nil)) - finished
            print("last sync: \(report.lastSyncOK == true ? "complete" : "incomplete"), \(Units.formatDuration(ago * 1_000_000_000)) ago"
                + (report.lastSyncError.map { ": \($0)" } ?? ""))
        } else {
            print("last sync: never")
        }
        if running { print("sync: running") }
        for t in report.transfers {
            let eta = t.eta.map { ", ETA \(Units.formatDuration($0 * 1_000_000_000))" } ?? ""
            print("  transfer \(t.repository)@\(t.digest.prefix(19)): \(Units.formatSize(t.done))/\(Units.formatSize(t.size)) at \(Units.formatSize(t.rate))/s\(eta)")
        }
        for run in report.hooks {
            print("  hook \(run.event) #\(run.hook) \(run.image): \(run.result) in \(run.duration)")
        }
        if let fleet = report.fleet { printFleet(fleet) }
        if let bundle = report.bundle {
            print("bundle: \(bundle.sequence) applied \(Units.formatDuration((Int64(time(nil)) - bundle.appliedAt) * 1_000_000_000)) ago from \(bundle.file)")
        }
        if let error = report.bundleError { print("bundle watch: \(error)") }
    }

    func printFleet(_ fleet: FleetLinkReport) {
        let now = Int64(time(nil))
        func ago(_ moment: Int64?) -> String {
            guard let moment else { return "never" }
            return "\(Units.formatDuration((now - moment) * 1_000_000_000)) ago"
        }
        guard fleet.onboarded, let name = fleet.name else {
            print("fleet: \(fleet.groundControl), not onboarded yet")
            return
        }
        print("fleet: \(fleet.groundControl), onboarded as \(name), registry \(fleet.registry ?? "?")")
        print("  last heartbeat: \(ago(fleet.lastHeartbeat)) (\(fleet.lastHeartbeatResult.isEmpty ? "none" : fleet.lastHeartbeatResult)); last accepted \(ago(fleet.lastHeartbeatOK)); \(fleet.heartbeatsSent) sent, \(fleet.heartbeatsFailed) failed")
        if let since = fleet.unreachableSince { print("  Ground Control unreachable since \(ago(since))") }
        print("  applied state: \(fleet.appliedStateDigest.isEmpty ? "none" : fleet.appliedStateDigest)")
        print("  applied config: \(fleet.appliedConfigDigest.isEmpty ? "none" : fleet.appliedConfigDigest)")
        if let refused = fleet.refusedConfigDigest {
            print("  refused config: \(refused): \(fleet.refusedConfigReason ?? "")")
        }
    }
}
