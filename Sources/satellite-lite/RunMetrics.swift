import Hooks
import SatelliteConfig
import Synchronization
import Sync
import CommandParsing
import ContentStore
import OCICore
import TinyRegistry

/// The agent's own metrics for `GET /metrics`, next to the registry's request counters.
final class RunMetrics: Sendable {
    private struct State {
        var bytesSynced: Int64 = 0
        var resumes: Int64 = 0
        var passes: Int64 = 0
        var failedPasses: Int64 = 0
        var gcRuns: Int64 = 0
        var gcFreed: Int64 = 0
        var engine: SyncEngine?
        var clientBaseline: Int64 = 0
        var resumeBaseline: Int64 = 0
        /// Bytes received and when, for the rate in use.
        var lastSample: (bytes: Int64, time: Int64) = (0, 0)
        var storeBytes: (value: Int64, time: Int64) = (0, 0)
    }

    private let state = Mutex(State())
    private let settings: Settings
    private let store: BlobStore
    private let hooks: HookBridge?

    init(settings: Settings, store: BlobStore, hooks: HookBridge?) {
        self.settings = settings
        self.store = store
        self.hooks = hooks
    }

    func passStarted(engine: SyncEngine) {
        state.withLock { s in
            s.engine = engine
            s.clientBaseline = engine.bytesReceived
            s.resumeBaseline = engine.resumeCount
        }
    }

    func passFinished(report: SyncEngine.Report, engine: SyncEngine) {
        state.withLock { s in
            s.bytesSynced += engine.bytesReceived - s.clientBaseline
            s.resumes += engine.resumeCount - s.resumeBaseline
            s.passes += 1
            if !report.complete { s.failedPasses += 1 }
            s.engine = nil
            s.storeBytes.time = 0  // measure again at the next scrape
        }
    }

    func gcFinished(freed: Int64) {
        state.withLock { s in
            s.gcRuns += 1
            s.gcFreed += freed
            s.storeBytes.time = 0
        }
    }

    func render() -> String {
        let now = MonotonicClock.now()
        let (synced, resumes, passes, failed, gcRuns, gcFreed, rate, storeBytes) = state.withLock { s in
            var synced = s.bytesSynced
            var resumes = s.resumes
            var rate: Int64 = 0
            if let engine = s.engine {
                let received = engine.bytesReceived
                synced += received - s.clientBaseline
                resumes += engine.resumeCount - s.resumeBaseline
                if s.lastSample.time > 0, now > s.lastSample.time, received >= s.lastSample.bytes {
                    rate = Int64(Double(received - s.lastSample.bytes) / (Double(now - s.lastSample.time) / 1e9))
                }
                s.lastSample = (received, now)
            } else {
                s.lastSample = (0, 0)
            }
            // Walking the store is not free: at most every 10 seconds, and after each pass
            // and GC.
            if now - s.storeBytes.time > 10_000_000_000 {
                s.storeBytes = (GarbageCollector.diskUse(store: store), now)
            }
            return (synced, resumes, s.passes, s.failedPasses, s.gcRuns, s.gcFreed, rate, s.storeBytes.value)
        }
        let quota = settings.quotaBytes(store: store)
        let hookTotals = hooks?.runner.totals ?? (runs: 0, failures: 0)
        let hookPending = hooks?.runner.pendingCount ?? 0
        var text = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: Int64) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        metric("satellite_sync_bytes_total", "counter", "Bytes received from the upstream.", synced)
        metric("satellite_sync_resumes_total", "counter", "Downloads continued from a partial file.", resumes)
        metric("satellite_sync_passes_total", "counter", "Reconcile passes run.", passes)
        metric("satellite_sync_failed_passes_total", "counter", "Passes that ended without the whole desired state.", failed)
        metric("satellite_sync_bandwidth_bytes_per_second", "gauge", "Download rate since the last scrape.", rate)
        metric("satellite_sync_bandwidth_limit_bytes_per_second", "gauge", "Configured cap (0 = unlimited).", settings.bandwidth)
        metric("satellite_store_bytes", "gauge", "Bytes the store occupies.", storeBytes)
        metric("satellite_store_quota_bytes", "gauge", "The store's quota.", quota)
        metric("satellite_gc_runs_total", "counter", "Garbage collections run by this process.", gcRuns)
        metric("satellite_gc_freed_bytes_total", "counter", "Bytes freed by garbage collection.", gcFreed)
        metric("satellite_hook_runs_total", "counter", "Hook runs finished by this process.", hookTotals.runs)
        metric("satellite_hook_failures_total", "counter", "Hook runs that timed out or exited non-zero.", hookTotals.failures)
        metric("satellite_hook_pending", "gauge", "Journaled events whose hooks have not finished.", Int64(hookPending))
        return text
    }
}
