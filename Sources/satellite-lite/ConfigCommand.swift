import CommandParsing
import ContentStore
import OCICore
import SatelliteConfig
import TinyRegistry
import Trust

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum ConfigCommand: CLICommandGroup {
    static var spec: CommandSpec {
        CommandSpec(name: "config", abstract: "Work with config files.", subcommands: [.command(Check.self)])
    }

    struct Check: ConfigOnlyCommand {
        static var spec: CommandSpec {
            CommandSpec(
                name: "check", abstract: "Validate a config file and show the effective settings; explain each error.",
                options: [.config])
        }

        var options: ConfigOption

        func run() throws {
            let settings = try Settings.load(configPath: options.config)
            let config = settings.config
            // The files the config names: the htpasswd users and the trust keys must load.
            if config.registry.push == .authenticated, let path = config.registry.users {
                do {
                    _ = try Htpasswd(path: path)
                } catch {
                    throw CLIError("registry.users: \(error)")
                }
            }
            let trust = try settings.makeTrustPolicy()
            let tls = try settings.makeRegistryConfiguration().tls
            // The site secret and the peers' CA bundle are read as a run would: a bad file fails
            // here, before "OK".
            if config.peers.enabled { _ = try settings.peerProof() }
            let peerTrust = config.peers.enabled ? try settings.peerCAFile() : nil
            print("config: \(settings.source): OK")
            print("profile: \(settings.profile.name) (\(settings.profileReason))")
            print("storage: \(config.storage.path), quota \(settings.quota)")
            print("listen: \(config.registry.listen), max \(settings.maxConnections) connections")
            let idle = config.registry.idleTimeout, header = config.registry.headerTimeout
            print("timeouts: idle \(idle > 0 ? Units.formatDuration(idle) : "off"), headers \(header > 0 ? Units.formatDuration(header) : "off")")
            if let tls {
                print("tls: \(tls.summary) (\(TLSCertificates.protocols))")
            }
            print("push: \(config.registry.push.rawValue)\(config.registry.users.map { " (users in \($0))" } ?? "")")
            for rule in trust.rules {
                print("trust: \(rule.match): \(rule.action.rawValue), \(rule.verifier.keys.count) key(s) (\(rule.verifier.keys.map(\.name).joined(separator: ", ")))")
            }
            if let gc = config.groundControl {
                let token = gc.tokenFile.map { "token file \($0)" } ?? (gc.token != nil ? "inline token" : "no token (must be onboarded already)")
                print("groundControl: \(gc.url), \(token), heartbeat every \(Units.formatDuration(gc.heartbeat)), remote config \(gc.remoteConfig ? "on" : "off"), remote hooks \(gc.remoteHooks ? "on" : "off")\(gc.insecure ? " (TLS not verified)" : "")")
                if config.upstream == nil { print("upstream: from Ground Control after onboarding") }
            }
            if let upstream = config.upstream {
                print("upstream: \(upstream.url)\(upstream.username.map { " as \($0)" } ?? "")\(upstream.insecure ? " (TLS not verified)" : "")")
            } else if config.groundControl == nil {
                print("upstream: none (serve only)")
            }
            if !config.state.images.isEmpty {
                print("state: \(config.state.images.count) image(s), every \(Units.formatDuration(config.state.interval))")
                for image in config.state.images { print("  - \(image)") }
            } else if let artifact = config.state.artifact {
                print("state: artifact \(artifact), every \(Units.formatDuration(config.state.interval))")
            } else if let file = config.state.file {
                print("state: file \(file), every \(Units.formatDuration(config.state.interval))")
            }
            let bandwidth = settings.bandwidth == 0 ? "unlimited" : "\(Units.formatSize(settings.bandwidth))/s"
            print("sync: bandwidth \(bandwidth), \(settings.syncConcurrency) concurrent transfer(s)")
            if config.peers.enabled {
                let discovery = config.peers.discover ? ", discovery on UDP \(config.peers.discoveryPort)" : ""
                print("peers: \(config.peers.urls.count) listed\(discovery), advertised as \(settings.advertisedURL), https peers verified with \(peerTrust ?? "the system's CAs")")
            }
            for (index, hook) in config.hooks.enumerated() {
                let timeout = Units.formatDuration(hook.timeout ?? settings.profile.hooks.timeout)
                print("hook \(index): on \(hook.on.rawValue)\(hook.match.map { " matching \($0)" } ?? ""), timeout \(timeout): \(hook.run)")
            }
        }
    }
}

func getenvString(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}
