import SatelliteConfig
import OCICore

/// Mirror configuration that makes a container runtime pull the upstream registry's images
/// through satellite-lite (`satellite-lite runtime-config`).
///
/// ``plan(for:)`` reads the runtime's current files under ``root`` and computes what they
/// should contain; ``Plan/apply()`` writes the changed ones atomically, keeping a backup of
/// each previous file. Planning twice after applying finds nothing to change.
public struct RuntimeConfig: Sendable {
    public enum Runtime: String, Sendable, CaseIterable {
        case containerd, crio, podman, docker, k3s
    }

    /// A registry whose pulls go to satellite-lite.
    public struct Registry: Sendable, Equatable {
        /// The registry host as image references spell it: `harbor.example.com`,
        /// `registry.local:8443`, `docker.io`.
        public var host: String
        /// Base URL of the registry itself, where a runtime falls back when satellite-lite
        /// does not answer: `https://harbor.example.com`, `https://registry-1.docker.io`.
        public var server: String
        /// PEM bundle that verifies the registry's certificate (`upstream.caFile`).
        public var caFile: String?
        /// Plain HTTP, or TLS without verification (`upstream.insecure`).
        public var insecure: Bool = false
        /// A `proxy.mirrors` registry: clients that cannot send containerd's `?ns=` (podman,
        /// CRI-O) reach it under the path prefix `/v2/<host>/…` of satellite-lite.
        public var pathPrefix: Bool = false

        public init(host: String, server: String, caFile: String? = nil, insecure: Bool = false, pathPrefix: Bool = false) {
            self.host = host
            self.server = server
            self.caFile = caFile
            self.insecure = insecure
            self.pathPrefix = pathPrefix
        }

        public var isDockerHub: Bool { host == "docker.io" }

        /// The registry an upstream URL names; Docker Hub's API hosts become `docker.io`.
        public init(upstream: UpstreamURL, caFile: String? = nil, insecure: Bool = false) {
            let authority = upstream.authority.lowercased()
            if Self.dockerHubHosts.contains(authority) {
                self.init(host: "docker.io", server: "https://registry-1.docker.io", caFile: caFile, insecure: insecure)
            } else {
                self.init(
                    host: authority, server: upstream.base, caFile: caFile,
                    insecure: insecure || upstream.scheme == "http")
            }
        }

        static let dockerHubHosts: Set = [
            "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com",
        ]
    }

    /// A problem that stops runtime-config, with what to do about it.
    public struct Error: Swift.Error, Sendable, CustomStringConvertible {
        public var message: String

        public init(_ message: String) {
            self.message = message
        }

        public var description: String { message }
    }

    /// host:port of satellite-lite as the runtime reaches it.
    public var mirror: String
    /// satellite-lite serves plain HTTP (no `registry.tls`): mirrors are marked insecure
    /// where a runtime needs to be told.
    public var mirrorIsPlainHTTP: Bool = true
    /// The PEM file that verifies satellite-lite's certificate (`registry.tls.caFile`, else
    /// its `certFile`): installed for the mirror where each runtime looks for it.
    public var mirrorCAFile: String?
    /// Whether `mirror` is a loopback address (Docker trusts those over plain HTTP).
    public var mirrorIsLoopback: Bool
    /// The registries to redirect: the upstream first.
    public var registries: [Registry]
    /// Directory the runtime's files live under: "/" on the machine, else a staging tree.
    public var root: String

    public init(mirror: String, mirrorIsLoopback: Bool, registries: [Registry], root: String = "/") {
        self.mirror = mirror
        self.mirrorIsLoopback = mirrorIsLoopback
        self.registries = registries
        var root = root
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root
    }

    /// The configuration for a satellite-lite config: its listener as the mirror, its
    /// upstream (and `extraHosts`, registry names also to redirect) as the registries.
    ///
    /// Throws ``Error`` when the config has no `upstream.url`.
    public init(config: ConfigFile, extraHosts: [String] = [], root: String = "/") throws {
        var registries: [Registry] = []
        if let upstream = config.upstream, let url = UpstreamURL(upstream.url) {
            registries.append(Registry(upstream: url, caFile: upstream.caFile, insecure: upstream.insecure))
        }
        if config.proxy.enabled {
            // Each proxy mirror: pulls of that registry go through satellite-lite, which fetches
            // misses from the mirror's url and stores them under <registry>/<repository>.
            for mirror in config.proxy.mirrors {
                let entry = Registry(
                    host: mirror.registry, server: mirror.url, caFile: mirror.caFile,
                    insecure: mirror.insecure || mirror.url.lowercased().hasPrefix("http://"), pathPrefix: true)
                registries.removeAll { $0.host == entry.host }
                registries.append(entry)
            }
        }
        guard !registries.isEmpty else {
            throw Error(
                "the config has no upstream.url (nor proxy.mirrors), so there is no registry to point at satellite-lite; add e.g. "
                    + "\"upstream\": { \"url\": \"https://harbor.example.com\" }")
        }
        for host in extraHosts {
            let lower = host.lowercased()
            let registry =
                Registry.dockerHubHosts.contains(lower)
                ? Registry(host: "docker.io", server: "https://registry-1.docker.io")
                : Registry(host: lower, server: "https://\(lower)")
            if !registries.contains(where: { $0.host == registry.host }) { registries.append(registry) }
        }
        self.init(
            mirror: config.registry.listen.localAddress, mirrorIsLoopback: config.registry.listen.localAddressIsLoopback,
            registries: registries, root: root)
        if let tls = config.registry.tls {
            mirrorIsPlainHTTP = false
            mirrorCAFile = tls.clientCAFile
        }
    }

    /// `<directory>/<mirror>/ca.crt` holding the mirror's CA (the certs.d layout of
    /// containers/image and Docker); nil when satellite-lite serves plain HTTP.
    ///
    /// The CA file is read on this machine, at the path the config names. Throws ``Error``
    /// when it is unreadable or holds no PEM certificate.
    func mirrorCAChange(directory: String) throws -> FileChange? {
        guard let caFile = mirrorCAFile else { return nil }
        let pem: [UInt8]
        do {
            pem = try PosixFile.readAll(path: caFile, limit: 1 << 20)
        } catch {
            throw Error("cannot read the registry.tls CA \(caFile): \(error)")
        }
        guard String(decoding: pem, as: UTF8.self).containsText("-----BEGIN CERTIFICATE-----") else {
            throw Error("\(caFile) holds no PEM certificate; set registry.tls.caFile to the CA that issued the listener's certificate")
        }
        let path = "\(directory)/\(mirror)/ca.crt"
        return FileChange(path: path, location: located(path), before: try read(path), after: pem)
    }

    /// The mirror as a URL.
    public var mirrorURL: String { "\(mirrorIsPlainHTTP ? "http" : "https")://\(mirror)" }

    /// What configuring `runtime` changes.
    ///
    /// Throws ``Error`` when an existing file cannot be merged safely (it is then left as it is).
    public func plan(for runtime: Runtime) throws -> Plan {
        switch runtime {
        case .containerd: try containerdPlan()
        case .crio, .podman: try registriesConfPlan(for: runtime)
        case .docker: try dockerPlan()
        case .k3s: try k3sPlan()
        }
    }

    /// The files of one runtime, with their content before and after.
    public struct Plan: Sendable {
        public var runtime: Runtime
        public var files: [FileChange]
        /// What the user should know or do next (restart, settings found, limits).
        public var notes: [String]

        /// Whether applying writes anything.
        public var hasChanges: Bool { files.contains(where: \.isChange) }

        /// Unified diff of every changed file (empty when nothing changes).
        public var diff: String {
            files.filter(\.isChange).map(\.diff).joined()
        }

        /// Writes every changed file (atomically, backing up the previous content).
        public func apply() throws -> [FileChange.Outcome] {
            try files.map { try $0.apply() }
        }
    }

    /// `root` + an absolute path of the target system.
    func located(_ path: String) -> String {
        root == "/" ? path : root + path
    }

    /// Reads a file of the target system; nil when it does not exist.
    func read(_ path: String) throws -> [UInt8]? {
        do {
            return try PosixFile.readAll(path: located(path), limit: 4 << 20)
        } catch let error as PosixError where error.isNotFound {
            return nil
        } catch {
            throw Error("cannot read \(located(path)): \(error)")
        }
    }

    func change(_ path: String, to text: String, before: [UInt8]?) -> FileChange {
        FileChange(path: path, location: located(path), before: before, after: Array(text.utf8))
    }

    /// A TOML basic string.
    static func tomlString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    static let header = "# Written by satellite-lite runtime-config: pulls go to the local satellite-lite registry first."
}
