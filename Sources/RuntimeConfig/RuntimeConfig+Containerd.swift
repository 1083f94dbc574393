import OCICore

extension RuntimeConfig {
    /// The default hosts directory of containerd (and of nerdctl).
    static let containerdHostsDirectory = "/etc/containerd/certs.d"
    static let containerdConfigPath = "/etc/containerd/config.toml"

    /// `<hosts dir>/<registry>/hosts.toml` for every registry: satellite-lite as a pull and
    /// resolve host (with its CA as the host's `ca` when it serves TLS), the registry itself
    /// as the fallback `server`.
    func containerdPlan() throws -> Plan {
        let probe = ContainerdConfigProbe(text: try read(Self.containerdConfigPath).map { String(decoding: $0, as: UTF8.self) })
        let hostsDirectory = probe.effectiveConfigPath ?? Self.containerdHostsDirectory
        var files: [FileChange] = []
        for registry in registries {
            let path = "\(hostsDirectory)/\(registry.host)/hosts.toml"
            files.append(change(path, to: containerdHostsFile(for: registry), before: try read(path)))
        }
        return Plan(runtime: .containerd, files: files, notes: containerdNotes(probe, hostsDirectory: hostsDirectory))
    }

    func containerdHostsFile(for registry: Registry) -> String {
        var text = """
            \(Self.header)
            # Pulls of \(registry.host) images try satellite-lite, then \(registry.server).
            server = \(Self.tomlString(registry.server))

            """
        if let caFile = registry.caFile { text += "ca = \(Self.tomlString(caFile))\n" }
        if registry.insecure && registry.server.hasPrefix("https://") { text += "skip_verify = true\n" }
        text += """

            [host.\(Self.tomlString(mirrorURL))]
              capabilities = ["pull", "resolve"]

            """
        if let caFile = mirrorCAFile { text += "  ca = \(Self.tomlString(caFile))\n" }
        return text
    }

    private func containerdNotes(_ probe: ContainerdConfigProbe, hostsDirectory: String) -> [String] {
        var notes: [String] = []
        let config = Self.containerdConfigPath
        if let (key, value) = probe.configPaths.first {
            notes.append(
                "containerd: config_path is set (\(key).config_path = \"\(value)\" in \(config)); "
                    + "hosts files go to \(hostsDirectory). containerd reads them at each pull: no restart needed.")
        } else if probe.exists {
            let snippet: String
            switch probe.version {
            case 3:
                snippet = "[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"\(hostsDirectory)\""
            case 2:
                snippet = "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\(hostsDirectory)\""
            default:
                snippet =
                    "[plugins.\"io.containerd.grpc.v1.cri\".registry]    # containerd 1.x (config version 2)\n  config_path = \"\(hostsDirectory)\"\n"
                    + "[plugins.\"io.containerd.cri.v1.images\".registry]   # containerd 2.x (config version 3)\n  config_path = \"\(hostsDirectory)\""
            }
            notes.append(
                "warning: containerd: config_path is not set in \(config), so the CRI plugin (kubelet, crictl) "
                    + "does not read these hosts files. Add to \(config):\n\(snippet)\nthen restart containerd.")
        } else {
            notes.append(
                "containerd: no \(config). containerd 2.x then reads \(Self.containerdHostsDirectory) by default; "
                    + "containerd 1.x needs config_path: create \(config) with\nversion = 2\n"
                    + "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\(hostsDirectory)\"\n"
                    + "then restart containerd.")
        }
        if probe.hasMirrorsTables {
            notes.append(
                "warning: containerd: \(config) also has registry.mirrors tables; containerd refuses mirrors together "
                    + "with config_path: remove them (the hosts files replace them).")
        }
        notes.append(
            "containerd: ctr does not read config_path: pull with `ctr images pull --hosts-dir \(hostsDirectory) ...`; "
                + "nerdctl reads \(Self.containerdHostsDirectory) by default.")
        return notes
    }
}

/// What containerd's config.toml says about registry hosts: a line scanner for the few
/// keys that matter (table headers and `key = value` lines), not a TOML parser.
struct ContainerdConfigProbe: Sendable {
    var exists: Bool
    /// The `version` key (1 when absent, as containerd assumes).
    var version = 1
    /// `config_path` values found, by the plugin table that holds them
    /// (`plugins."io.containerd.grpc.v1.cri".registry`, `plugins."io.containerd.cri.v1.images".registry`).
    var configPaths: [(String, String)] = []
    /// Whether the old-style `registry.mirrors` tables are present.
    var hasMirrorsTables = false

    /// The plugin ids whose `registry.config_path` the CRI plugin reads: 1.x (config
    /// version 2), 2.x (version 3), and the short name of version 1 configs.
    static let criPlugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "cri"]

    init(text: String?) {
        exists = text != nil
        guard let text else { return }
        var table: [String] = []
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = Self.stripComment(rawLine).trimmed(where: { " \t\r".contains($0) })
            guard !line.isEmpty else { continue }
            if line.hasPrefix("[[") { table = Self.keyPath(line.dropFirst(2).prefix { $0 != "]" }); continue }
            if line.hasPrefix("[") {
                table = Self.keyPath(line.dropFirst().prefix { $0 != "]" })
                if table.count >= 4, table[0] == "plugins", Self.criPlugins.contains(table[1]), table[2] == "registry",
                    table[3] == "mirrors"
                {
                    hasMirrorsTables = true
                }
                continue
            }
            guard let equals = Self.unquotedIndex(of: "=", in: Substring(line)) else { continue }
            let key = table + Self.keyPath(line[..<equals])
            let value = line[line.index(after: equals)...].trimmed(where: { " \t".contains($0) })
            if key == ["version"], let number = Int(value) {
                version = number
            }
            if key.count == 4, key[0] == "plugins", Self.criPlugins.contains(key[1]), key[2] == "registry" {
                if key[3] == "config_path", let path = Self.stringValue(value), !path.isEmpty {
                    configPaths.append(("plugins.\"\(key[1])\".registry", path))
                }
                if key[3] == "mirrors" { hasMirrorsTables = true }
            }
        }
    }

    /// The first directory of the first config_path found (config_path may list several,
    /// separated by ':').
    var effectiveConfigPath: String? {
        guard let first = configPaths.first?.1.split(separator: ":").first else { return nil }
        return String(first)
    }

    /// `a."b.c".d` -> ["a", "b.c", "d"].
    static func keyPath(_ text: some StringProtocol) -> [String] {
        var parts: [String] = []
        var current = ""
        var quote: Character?
        for character in text {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "." {
                parts.append(current.trimmed(where: { " \t".contains($0) }))
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current.trimmed(where: { " \t".contains($0) }))
        return parts
    }

    /// A TOML basic or literal string on one line; nil for anything else.
    static func stringValue(_ text: String) -> String? {
        guard let first = text.first, first == "\"" || first == "'", text.count >= 2, text.last == first else { return nil }
        let inner = text.dropFirst().dropLast()
        return first == "'" ? String(inner) : String(inner).replacingText("\\\\", with: "\\")
    }

    static func stripComment(_ line: Substring) -> Substring {
        guard let hash = unquotedIndex(of: "#", in: line) else { return line }
        return line[..<hash]
    }

    static func unquotedIndex(of target: Character, in text: Substring) -> Substring.Index? {
        var quote: Character?
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if let open = quote {
                if character == "\\" && open == "\"" {
                    index = text.index(after: index)
                    if index == text.endIndex { break }
                } else if character == open {
                    quote = nil
                }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == target {
                return index
            }
            index = text.index(after: index)
        }
        return nil
    }
}
