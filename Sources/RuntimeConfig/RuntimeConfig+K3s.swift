import OCICore
extension RuntimeConfig {
    static let k3sRegistries = "/etc/rancher/k3s/registries.yaml"

    /// Merges satellite-lite into `mirrors.<registry>.endpoint` (first) of registries.yaml,
    /// and adds `configs.<registry>.tls` for an upstream with a CA file or without
    /// verification, and `configs.<mirror>.tls.ca_file` when satellite-lite serves TLS.
    /// Everything else in the file stays as it is.
    func k3sPlan() throws -> Plan {
        let path = Self.k3sRegistries
        let before = try read(path)
        var yaml: RegistriesYAML
        do {
            yaml = try RegistriesYAML(
                text: before.map { String(decoding: $0, as: UTF8.self) } ?? "\(Self.header)\n")
        } catch {
            throw Error(
                "\(located(path)) holds YAML this merge cannot read safely (\(error)); it was left as it is. "
                    + "Add satellite-lite by hand: mirrors: { \"\(registries[0].host)\": { endpoint: [\"\(mirrorURL)\"] } }")
        }
        var notes: [String] = []
        var changed = false
        do {
            for registry in registries {
                changed = try yaml.addMirror(host: registry.host, endpoint: mirrorURL) || changed
                var tls: [(String, String)] = []
                if let caFile = registry.caFile { tls.append(("ca_file", RegistriesYAML.quoted(caFile))) }
                if registry.insecure && registry.server.hasPrefix("https://") { tls.append(("insecure_skip_verify", "true")) }
                guard !tls.isEmpty else { continue }
                if try yaml.hasConfig(host: registry.host) {
                    notes.append(
                        "k3s: configs.\(registry.host) already exists in \(path) and was left as it is; check its tls settings.")
                } else {
                    changed = try yaml.addTLSConfig(host: registry.host, settings: tls) || changed
                }
            }
            if let caFile = mirrorCAFile {
                // The mirror's own entry: k3s (containerd) verifies satellite-lite with this CA.
                if try yaml.hasConfig(host: mirror) {
                    notes.append("k3s: configs.\(mirror) already exists in \(path) and was left as it is; its tls.ca_file should be \(caFile).")
                } else {
                    changed = try yaml.addTLSConfig(host: mirror, settings: [("ca_file", RegistriesYAML.quoted(caFile))]) || changed
                }
            }
        } catch {
            throw Error("\(located(path)): \(error); it was left as it is")
        }
        let file =
            changed
            ? change(path, to: yaml.text, before: before)
            : FileChange(path: path, location: located(path), before: before, after: before ?? [])
        notes.append("k3s: reads \(path) at start: run `systemctl restart k3s` (or k3s-agent on agents).")
        return Plan(runtime: .k3s, files: [file], notes: notes)
    }
}
