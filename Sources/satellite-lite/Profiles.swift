import CommandParsing
import ContentStore
import OCICore
import SatelliteConfig

struct Profiles: CLICommand {
    static var spec: CommandSpec {
        CommandSpec(
            name: "profiles", abstract: "List the hardware profiles and their key values.",
            options: [.json])
    }

    var json: Bool

    init(_ arguments: ParsedArguments) {
        json = arguments.flag("json")
    }

    func run() throws {
        let detected = ProfileDetection.detect()
        if json {
            struct Entry: Encodable {
                let name: String, description: String, platform: String
                let bufferSize: Int, bufferCount: Int, eventLoopThreads: Int, blockingThreads: Int
                let maxConnections: Int, syncConcurrency: Int, bandwidth: Int64, quota: String, detected: Bool
            }
            let entries = HardwareProfile.builtIn.map { p in
                Entry(
                    name: p.name, description: p.description, platform: p.platform.description,
                    bufferSize: p.io.bufferSize, bufferCount: p.io.bufferCount,
                    eventLoopThreads: p.registry.eventLoopThreads, blockingThreads: p.registry.blockingThreads,
                    maxConnections: p.registry.maxConnections, syncConcurrency: p.sync.concurrency,
                    bandwidth: p.sync.bandwidth, quota: p.storage.quota.description,
                    detected: p.name == detected.profile.name)
            }
            try printJSON(entries)
            return
        }
        for profile in HardwareProfile.builtIn {
            let mark = profile.name == detected.profile.name ? " (detected)" : ""
            print("\(profile.name)\(mark): \(profile.description)")
            let bandwidth = profile.sync.bandwidth == 0 ? "unlimited" : "\(Units.formatSize(profile.sync.bandwidth))/s"
            print(
                "  platform \(profile.platform), buffers \(profile.io.bufferCount) x \(Units.formatSize(Int64(profile.io.bufferSize))), "
                    + "threads \(profile.registry.eventLoopThreads) loop + \(profile.registry.blockingThreads) I/O, "
                    + "\(profile.registry.maxConnections) connections")
            print(
                "  sync \(profile.sync.concurrency) concurrent, bandwidth \(bandwidth), quota \(profile.storage.quota), "
                    + "GC at \(Units.formatDecimal(profile.gc.highWatermark * 100))% -> \(Units.formatDecimal(profile.gc.lowWatermark * 100))%, "
                    + "hook timeout \(Units.formatDuration(profile.hooks.timeout))")
        }
        print("detected: \(detected.profile.name) (\(detected.reason))")
    }
}
