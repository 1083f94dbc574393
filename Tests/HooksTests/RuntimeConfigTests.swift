import SatelliteConfig
import Testing

@testable import Hooks
@testable import RuntimeConfig
import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Golden files live in Tests/HooksTests/golden; `UPDATE_GOLDEN=1 swift test` rewrites them
/// (review the diff before committing).
private enum Golden {
    static let directory: String = {
        let path = #filePath
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) + "/golden"
    }()

    static func input(_ name: String) -> String {
        Helpers.read("\(directory)/\(name)") ?? "missing golden input \(name)"
    }

    static func check(_ actual: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let path = "\(directory)/\(name)"
        if getenv("UPDATE_GOLDEN") != nil {
            Helpers.write(path, actual)
            return
        }
        let expected = Helpers.read(path)
        #expect(expected != nil, "missing golden file \(name); run with UPDATE_GOLDEN=1", sourceLocation: sourceLocation)
        #expect(actual == expected, "\(name) differs from the golden file", sourceLocation: sourceLocation)
    }
}

@Suite struct RuntimeConfigTests {
    private func config(
        upstream: String = "https://harbor.example.com", listen: String = "0.0.0.0:5000", caFile: String? = nil,
        insecure: Bool = false
    ) throws -> ConfigFile {
        var upstreamJSON = "\"url\": \"\(upstream)\""
        if let caFile { upstreamJSON += ", \"caFile\": \"\(caFile)\"" }
        if insecure { upstreamJSON += ", \"insecure\": true" }
        return try ConfigFile(
            text: "{ \"registry\": { \"listen\": \"\(listen)\" }, \"upstream\": { \(upstreamJSON) } }", source: "test")
    }

    private func text(_ change: FileChange) -> String { String(decoding: change.after, as: UTF8.self) }

    // MARK: containerd

    @Test func containerdHostsFiles() throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        let runtime = try RuntimeConfig(
            config: config(caFile: "/etc/satellite-lite/ca.pem"), extraHosts: ["registry-1.docker.io"], root: root)
        let plan = try runtime.plan(for: .containerd)
        #expect(
            plan.files.map(\.path) == [
                "/etc/containerd/certs.d/harbor.example.com/hosts.toml", "/etc/containerd/certs.d/docker.io/hosts.toml",
            ])
        Golden.check(text(plan.files[0]), "containerd/harbor.example.com.hosts.toml")
        Golden.check(text(plan.files[1]), "containerd/docker.io.hosts.toml")
        #expect(plan.files[0].location == "\(root)/etc/containerd/certs.d/harbor.example.com/hosts.toml")
        #expect(plan.notes.contains { $0.contains("no /etc/containerd/config.toml") })
    }

    @Test func containerdUpstreamOnPlainHTTPWithPort() throws {
        let runtime = try RuntimeConfig(config: config(upstream: "http://registry.lab:5001", listen: "127.0.0.1:6000"), root: "/nonexistent")
        let plan = try runtime.plan(for: .containerd)
        #expect(plan.files.map(\.path) == ["/etc/containerd/certs.d/registry.lab:5001/hosts.toml"])
        #expect(text(plan.files[0]).contains("server = \"http://registry.lab:5001\"\n"))
        #expect(text(plan.files[0]).contains("[host.\"http://127.0.0.1:6000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"))
        #expect(!text(plan.files[0]).contains("skip_verify"))
    }

    @Test(arguments: [
        // containerd 1.x, config version 2, set: files go where config_path says.
        ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/ctrd/hosts:/etc/docker/certs.d\"\n",
         "/etc/ctrd/hosts", "config_path is set (plugins.\"io.containerd.grpc.v1.cri\".registry.config_path"),
        // containerd 2.x, config version 3, TOML literal strings and quoted headers.
        ("version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/etc/containerd/certs.d' # hosts\n",
         "/etc/containerd/certs.d", "config_path is set (plugins.\"io.containerd.cri.v1.images\".registry.config_path"),
        // Dotted key under the plugin table.
        ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  registry.config_path = \"/srv/certs.d\"\n",
         "/srv/certs.d", "config_path is set"),
        // Version 2 without config_path: the 1.x key is what to add.
        ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\"\n",
         "/etc/containerd/certs.d", "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\""),
        // Version 3 without config_path: the 2.x key.
        ("version = 3\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n",
         "/etc/containerd/certs.d", "[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d\""),
        // A commented-out setting does not count.
        ("version = 2\n# [plugins.\"io.containerd.grpc.v1.cri\".registry]\n#   config_path = \"/x\"\n",
         "/etc/containerd/certs.d", "config_path is not set"),
    ])
    func containerdConfigPathDetection(configText: String, hostsDirectory: String, note: String) throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        Helpers.write("\(root)/etc/containerd/config.toml", configText)
        let plan = try RuntimeConfig(config: config(), root: root).plan(for: .containerd)
        #expect(plan.files.map(\.path) == ["\(hostsDirectory)/harbor.example.com/hosts.toml"])
        #expect(plan.notes.contains { $0.contains(note) }, "\(plan.notes)")
    }

    @Test func containerdMirrorsTablesAreReported() throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        Helpers.write(
            "\(root)/etc/containerd/config.toml",
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://m\"]\n")
        let plan = try RuntimeConfig(config: config(), root: root).plan(for: .containerd)
        #expect(plan.notes.contains { $0.contains("registry.mirrors tables") })
    }

    // MARK: CRI-O and podman

    @Test func crioAndPodmanShareOneDropIn() throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        let runtime = try RuntimeConfig(
            config: config(upstream: "http://registry.lab:5001"), extraHosts: ["docker.io"], root: root)
        let crio = try runtime.plan(for: .crio)
        let podman = try runtime.plan(for: .podman)
        #expect(crio.files.map(\.path) == ["/etc/containers/registries.conf.d/50-satellite-lite.conf"])
        #expect(crio.files == podman.files)
        Golden.check(text(crio.files[0]), "registries/50-satellite-lite.conf")
        #expect(crio.notes.contains { $0.contains("systemctl reload crio") })
        #expect(podman.notes.contains { $0.contains("podman") })
        // The main file is read for conflicts, never written.
        Helpers.write("\(root)/etc/containers/registries.conf", Golden.input("registries/registries.conf.v1"))
        let warned = try runtime.plan(for: .podman)
        #expect(warned.files.map(\.path) == ["/etc/containers/registries.conf.d/50-satellite-lite.conf"])
        #expect(warned.notes.contains { $0.contains("old v1 format") })
        Helpers.write("\(root)/etc/containers/registries.conf", "[[registry]]\nprefix = \"docker.io\"\nlocation = \"mirror.gcr.io\"\n")
        #expect(try runtime.plan(for: .crio).notes.contains { $0.contains("also has a [[registry]] for docker.io") })
    }

    @Test func registriesDropInIsSecureWhenNothingIsPlainHTTP() throws {
        var runtime = try RuntimeConfig(config: config(), root: "/nonexistent")
        runtime.mirrorIsPlainHTTP = false
        let text = runtime.registriesDropIn()
        #expect(!text.contains("insecure"))
    }

    // MARK: TLS listener (registry.tls)

    /// A config whose listener serves TLS with `caFile` (nil: the self-signed certFile).
    private func tlsConfig(root: String, caFile: Bool) throws -> (ConfigFile, ca: String) {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
        Helpers.write("\(root)/cert.pem", pem)
        Helpers.write("\(root)/ca.pem", pem)
        let tls = "\"certFile\": \"\(root)/cert.pem\", \"keyFile\": \"\(root)/key.pem\""
            + (caFile ? ", \"caFile\": \"\(root)/ca.pem\"" : "")
        let config = try ConfigFile(
            text: "{ \"registry\": { \"listen\": \"0.0.0.0:5443\", \"tls\": { \(tls) } }, \"upstream\": { \"url\": \"https://harbor.example.com\" } }",
            source: "test")
        return (config, caFile ? "\(root)/ca.pem" : "\(root)/cert.pem")
    }

    @Test(arguments: [true, false]) func tlsListenerGivesEveryRuntimeTheCA(caFile: Bool) throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        let (config, ca) = try tlsConfig(root: root, caFile: caFile)
        let runtime = try RuntimeConfig(config: config, root: root)
        #expect(runtime.mirrorURL == "https://127.0.0.1:5443")
        #expect(runtime.mirrorCAFile == ca)

        let containerd = text(try runtime.plan(for: .containerd).files[0])
        #expect(containerd.contains("[host.\"https://127.0.0.1:5443\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"\(ca)\"\n"))

        for kind in [RuntimeConfig.Runtime.podman, .crio] {
            let plan = try runtime.plan(for: kind)
            #expect(plan.files.map(\.path) == ["/etc/containers/registries.conf.d/50-satellite-lite.conf", "/etc/containers/certs.d/127.0.0.1:5443/ca.crt"])
            #expect(!text(plan.files[0]).contains("insecure"))
            #expect(text(plan.files[1]) == Helpers.read(ca))
        }

        let docker = try runtime.plan(for: .docker)
        #expect(docker.files.map(\.path) == ["/etc/docker/daemon.json", "/etc/docker/certs.d/127.0.0.1:5443/ca.crt"])
        #expect(text(docker.files[0]).contains("\"https://127.0.0.1:5443\""))
        #expect(!text(docker.files[0]).contains("insecure-registries"))

        let k3s = text(try runtime.plan(for: .k3s).files[0])
        #expect(k3s.contains("\"https://127.0.0.1:5443\""))
        #expect(k3s.contains("configs:\n  \"127.0.0.1:5443\":\n    tls:\n      ca_file: \"\(ca)\"\n"))

        // Applied, then planned again: nothing changes.
        for kind in RuntimeConfig.Runtime.allCases {
            _ = try runtime.plan(for: kind).apply()
            #expect(try !runtime.plan(for: kind).hasChanges, "\(kind) changes on a second run")
        }
    }

    @Test func tlsListenerWithAnUnreadableOrNonPEMCAIsAClearError() throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        let (config, ca) = try tlsConfig(root: root, caFile: true)
        let runtime = try RuntimeConfig(config: config, root: root)
        Helpers.write(ca, "not a certificate")
        #expect(throws: RuntimeConfig.Error.self) { try runtime.plan(for: .podman) }
        Helpers.remove(ca)
        let error = #expect(throws: RuntimeConfig.Error.self) { try runtime.plan(for: .docker) }
        #expect(error?.message.contains(ca) == true)
        // containerd and k3s only name the file.
        #expect(try runtime.plan(for: .containerd).hasChanges)
    }

    // MARK: Docker

    @Test func dockerNewDaemonJSON() throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        // A LAN listener over plain HTTP also needs insecure-registries.
        let plan = try RuntimeConfig(config: config(upstream: "https://registry-1.docker.io", listen: "192.168.7.2:5000"), root: root)
            .plan(for: .docker)
        Golden.check(text(plan.files[0]), "docker/new.daemon.json")
        #expect(!plan.notes.contains { $0.contains("only for Docker Hub") })
    }

    @Test func dockerMergeKeepsEveryOtherKeyInOrder() throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        Helpers.write("\(root)/etc/docker/daemon.json", Golden.input("docker/merge.before.json"))
        let runtime = try RuntimeConfig(config: config(), root: root)
        let plan = try runtime.plan(for: .docker)
        Golden.check(text(plan.files[0]), "docker/merge.after.json")
        Golden.check(plan.diff, "docker/merge.diff")
        #expect(plan.notes.contains { $0.contains("only for Docker Hub") && $0.contains("harbor.example.com") })
        // Applying, then planning again: nothing to do.
        let outcomes = try plan.apply()
        #expect(outcomes == [.updated(path: "\(root)/etc/docker/daemon.json", backup: "\(root)/etc/docker/daemon.json.satellite-lite.bak")])
        #expect(Helpers.read("\(root)/etc/docker/daemon.json.satellite-lite.bak") == Golden.input("docker/merge.before.json"))
        let again = try runtime.plan(for: .docker)
        #expect(!again.hasChanges)
        #expect(again.diff == "")
        #expect(try again.apply() == [.unchanged(path: "\(root)/etc/docker/daemon.json")])
    }

    @Test(arguments: [
        ("{ \"debug\": true, }", "is not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        ("{ \"registry-mirrors\": \"http://x\" }", "\"registry-mirrors\" in"),
    ])
    func dockerRefusesFilesItCannotMerge(content: String, message: String) throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        Helpers.write("\(root)/etc/docker/daemon.json", content)
        let error = #expect(throws: RuntimeConfig.Error.self) {
            try RuntimeConfig(config: config(), root: root).plan(for: .docker)
        }
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        #expect(Helpers.read("\(root)/etc/docker/daemon.json") == content)
    }

    // MARK: k3s

    @Test func k3sNewRegistriesYAML() throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        let plan = try RuntimeConfig(
            config: config(caFile: "/etc/satellite-lite/ca.pem", insecure: true), extraHosts: ["docker.io"], root: root
        ).plan(for: .k3s)
        #expect(plan.files.map(\.path) == ["/etc/rancher/k3s/registries.yaml"])
        Golden.check(text(plan.files[0]), "k3s/new.registries.yaml")
    }

    @Test(arguments: ["merge-block", "merge-flow"])
    func k3sMergeKeepsEverythingElse(name: String) throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        let before = Golden.input("k3s/\(name).before.yaml")
        Helpers.write("\(root)/etc/rancher/k3s/registries.yaml", before)
        let runtime = try RuntimeConfig(
            config: config(caFile: "/etc/satellite-lite/ca.pem"), extraHosts: ["docker.io", "quay.io"], root: root)
        let plan = try runtime.plan(for: .k3s)
        Golden.check(text(plan.files[0]), "k3s/\(name).after.yaml")
        _ = try plan.apply()
        #expect(!(try runtime.plan(for: .k3s).hasChanges))
        #expect(Helpers.read("\(root)/etc/rancher/k3s/registries.yaml.satellite-lite.bak") == before)
    }

    @Test(arguments: [
        ("mirrors:\n  docker.io: &hub\n    endpoint:\n      - \"https://m\"\n  quay.io: *hub\n", "anchors"),
        ("mirrors: { docker.io: { endpoint: [\"https://m\"] } }\n", "block map"),
        ("mirrors:\n\t\"docker.io\":\n", "tab"),
        ("---\nmirrors:\n---\nconfigs:\n", "document markers"),
        ("mirrors:\n  \"harbor.example.com\": { endpoint: [\"https://m\"] }\n", "flow style"),
        ("mirrors:\n  \"harbor.example.com\":\n    endpoint: \"https://m\"\n", "not a list"),
    ])
    func k3sRefusesYAMLItCannotReadSafely(content: String, reason: String) throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        Helpers.write("\(root)/etc/rancher/k3s/registries.yaml", content)
        let error = #expect(throws: RuntimeConfig.Error.self) {
            try RuntimeConfig(config: config(), root: root).plan(for: .k3s)
        }
        #expect(error?.message.contains(reason) == true, "\(String(describing: error))")
        #expect(error?.message.contains("left as it is") == true)
    }

    // MARK: Applying

    @Test func applyIsAtomicKeepsModeAndIsIdempotent() throws {
        let root = Helpers.temporaryDirectory()
        defer { Helpers.remove(root) }
        let runtime = try RuntimeConfig(config: config(), root: root)
        // podman shares CRI-O's drop-in: configured already by then.
        for name in RuntimeConfig.Runtime.allCases where name != .podman {
            let plan = try runtime.plan(for: name)
            #expect(plan.hasChanges)
            for outcome in try plan.apply() {
                guard case .created = outcome else {
                    Issue.record("\(name): expected a new file, got \(outcome)")
                    continue
                }
            }
            let again = try runtime.plan(for: name)
            #expect(!again.hasChanges, "\(name) is not idempotent: \(again.diff)")
        }
        #expect(!(try runtime.plan(for: .podman).hasChanges))
        // A private daemon.json stays private through a merge.
        let daemon = "\(root)/etc/docker/daemon.json"
        Helpers.write(daemon, "{\"log-driver\": \"journald\"}")
        chmod(daemon, 0o600)
        _ = try runtime.plan(for: .docker).apply()
        var st = stat()
        #expect(stat(daemon, &st) == 0 && st.st_mode & 0o777 == 0o600)
        // No temp files are left behind.
        #expect(try listing("\(root)/etc/docker") == ["daemon.json", "daemon.json.satellite-lite.bak"])
    }

    private func listing(_ path: String) throws -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    @Test func missingUpstreamIsExplained() throws {
        let config = try ConfigFile(text: "{}", source: "test")
        let error = #expect(throws: RuntimeConfig.Error.self) { try RuntimeConfig(config: config) }
        #expect(error?.message.contains("no upstream.url") == true)
    }

    @Test func wildcardListenBecomesLoopback() throws {
        #expect(try RuntimeConfig(config: config(listen: "0.0.0.0:5000")).mirror == "127.0.0.1:5000")
        #expect(try RuntimeConfig(config: config(listen: "[::]:5000")).mirror == "127.0.0.1:5000")
        #expect(try RuntimeConfig(config: config(listen: "10.0.0.2:5000")).mirror == "10.0.0.2:5000")
    }
}
