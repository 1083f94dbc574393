import FleetLink
import JSONCoding
import Logging
import SatelliteConfig
import Sync
import ContentStore
import OCICore

/// Where the fleet link meets the rest of the CLI: the local document remote config is
/// merged over, and the effective settings of each pass.
extension Settings {
    /// The config file as a JSON document (an empty object for the embedded default).
    func localDocument() -> JSONValue {
        guard source != "embedded default", let bytes = try? PosixFile.readAll(path: source, limit: 1 << 20),
            let json = try? JSONValue.parse(bytes, source: source)
        else { return .object([:]) }
        return json
    }

    /// Opens the fleet link when `groundControl` is configured.
    ///
    /// Throws when its files in the store cannot be read.
    func openFleetLink(store: BlobStore, logger: Logger) throws -> FleetLink? {
        guard let groundControl = config.groundControl else { return nil }
        do {
            return try FleetLink(configuration: groundControl, storeRoot: store.root, logger: logger)
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// These settings with the fleet's remote config and its upstream/state applied.
    func withFleet(_ fleet: FleetLink?, local: JSONValue) -> (settings: Settings, logLevel: Logger.Level?) {
        guard let fleet else { return (self, nil) }
        var settings = self
        let effective = fleet.effective(local: local, localConfig: config)
        settings.config = effective.config
        return (settings, effective.logLevel)
    }
}

extension SyncEngine.Report {
    /// One line for the heartbeat's activity.
    var activityLine: String {
        var line = "last pass: \(present)/\(wanted) image(s) present"
        if !updated.isEmpty { line += ", \(updated.count) updated" }
        if !removed.isEmpty { line += ", \(removed.count) removed" }
        if let failure = failures.first { line += ", \(failures.count) failed (\(failure.image): \(failure.error.prefix(160)))" }
        return line
    }
}
