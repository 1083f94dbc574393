import Fleet
import JSONCoding
import Logging
import SatelliteConfig

/// The rules for a config-state document from Ground Control: what it may change, and the
/// effective config file it gives together with the local one.
///
/// - `app_config`: `state_replication_interval` (→ `state.interval`) and
///   `heartbeat_interval` (→ `groundControl.heartbeat`) in their `@every …` form, `log_level`.
/// - `satellite_lite`: keys of the config file, merged over the local file (objects key by
///   key, anything else replaced); never `storage.path` or `groundControl`; `hooks` only with
///   `groundControl.remoteHooks`.
///
/// The result must pass the same validation as a config file; if not, it is refused whole.
public enum RemoteConfig {
    /// The result of applying a document over the local config.
    public struct Effective: Sendable {
        public var config: ConfigFile
        /// nil: leave the log level as it is.
        public var logLevel: Logger.Level?
    }

    /// A reason a remote config is refused.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// Applies `document` over the local config document.
    ///
    /// Throws ``Refusal`` naming the first rule broken or the key that failed validation.
    public static func apply(_ document: ConfigState, over local: JSONValue, remoteHooks: Bool) throws -> Effective {
        var merged = local
        if let remote = document.satelliteLite {
            guard case .object(let members) = JSONValue(remote) else {
                throw Refusal("satellite_lite must be an object of config file keys")
            }
            if members["groundControl"] != nil {
                throw Refusal("satellite_lite may not set groundControl (the link to Ground Control stays local)")
            }
            if case .object(let storage)? = members["storage"], storage["path"] != nil {
                throw Refusal("satellite_lite may not set storage.path (moving the store needs a person on site)")
            }
            if members["hooks"] != nil, !remoteHooks {
                throw Refusal("satellite_lite sets hooks, but groundControl.remoteHooks is not true on this satellite")
            }
            merged = mergeObjects(local, .object(members))
        }
        let app = document.app
        var object: [String: JSONValue] = [:]
        if case .object(let members) = merged { object = members }
        if let text = app.stateReplicationInterval {
            guard let seconds = EveryInterval.seconds(text), seconds >= 1 else {
                throw Refusal("app_config.state_replication_interval \"\(text)\" is not \"@every <duration>\" of at least 1s")
            }
            object["state"] = setting(object["state"], "interval", .string("\(Int64(seconds.rounded()))s"))
        }
        if let text = app.heartbeatInterval {
            guard let seconds = EveryInterval.seconds(text), seconds >= 1 else {
                throw Refusal("app_config.heartbeat_interval \"\(text)\" is not \"@every <duration>\" of at least 1s")
            }
            object["groundControl"] = setting(object["groundControl"], "heartbeat", .string("\(Int64(seconds.rounded()))s"))
        }
        var level: Logger.Level?
        if let text = app.logLevel {
            guard let parsed = logLevel(text) else {
                throw Refusal("app_config.log_level \"\(text)\" is not one of trace, debug, info, warn, error, fatal")
            }
            level = parsed
        }
        do {
            let config = try ConfigFile(json: .object(object))
            return Effective(config: config, logLevel: level)
        } catch let error as ConfigError {
            throw Refusal("the config it gives is invalid: \(error)")
        }
    }

    static func setting(_ section: JSONValue?, _ key: String, _ value: JSONValue) -> JSONValue {
        var members: [String: JSONValue] = [:]
        if case .object(let existing)? = section { members = existing }
        members[key] = value
        return .object(members)
    }

    /// JSON merge: objects key by key (recursively), anything else replaced; null removes.
    static func mergeObjects(_ base: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let patchMembers) = patch else { return patch }
        var members: [String: JSONValue] = [:]
        if case .object(let baseMembers) = base { members = baseMembers }
        for (key, value) in patchMembers {
            if value == .null {
                members[key] = nil
            } else {
                members[key] = mergeObjects(members[key] ?? .null, value)
            }
        }
        return .object(members)
    }

    /// Go's logrus/zerolog names as swift-log levels.
    static func logLevel(_ text: String) -> Logger.Level? {
        switch text.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "notice": .notice
        case "warn", "warning": .warning
        case "error": .error
        case "fatal", "panic", "critical": .critical
        default: nil
        }
    }
}
