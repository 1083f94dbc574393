import OCICore
extension RuntimeConfig {
    /// The drop-in CRI-O and podman both read (containers-registries.conf.d(5)); the main
    /// registries.conf is never rewritten.
    static let registriesDropIn = "/etc/containers/registries.conf.d/50-satellite-lite.conf"
    static let registriesConf = "/etc/containers/registries.conf"
    /// Per-registry CAs of containers/image: `<dir>/<host:port>/ca.crt`.
    static let containersCertsDirectory = "/etc/containers/certs.d"

    /// One `[[registry]]` per registry with satellite-lite as its `[[registry.mirror]]`.
    /// CRI-O and podman share the file, so configuring both gives the same content.
    func registriesConfPlan(for runtime: Runtime) throws -> Plan {
        var files = [change(Self.registriesDropIn, to: registriesDropIn(), before: try read(Self.registriesDropIn))]
        var notes: [String] = []
        if let ca = try mirrorCAChange(directory: Self.containersCertsDirectory) {
            files.append(ca)
            notes.append("\(runtime == .crio ? "CRI-O" : "podman"): satellite-lite's CA is in \(ca.path) (containers-certs.d(5)).")
        }
        if let main = try read(Self.registriesConf).map({ String(decoding: $0, as: UTF8.self) }) {
            notes += registriesConfWarnings(main)
        }
        switch runtime {
        case .crio:
            notes.append("CRI-O: run `systemctl reload crio` (it rereads registries configuration on SIGHUP).")
        default:
            notes.append(
                "podman: used from the next podman command; rootless podman also reads this drop-in "
                    + "unless ~/.config/containers/registries.conf.d overrides the same registries.")
        }
        return Plan(runtime: runtime, files: files, notes: notes)
    }

    func registriesDropIn() -> String {
        var text = """
            \(Self.header)
            # CRI-O and podman read this drop-in after \(Self.registriesConf), which stays as it is.

            """
        for registry in registries {
            text += """

                [[registry]]
                prefix = \(Self.tomlString(registry.host))
                location = \(Self.tomlString(registry.host))

                """
            if registry.insecure { text += "insecure = true\n" }
            text += """

                [[registry.mirror]]
                location = \(Self.tomlString(registry.pathPrefix ? "\(mirror)/\(registry.host)" : mirror))

                """
            if mirrorIsPlainHTTP { text += "insecure = true\n" }
        }
        return text
    }

    /// Settings of the main file that defeat or conflict with the drop-in.
    private func registriesConfWarnings(_ text: String) -> [String] {
        var warnings: [String] = []
        var table = ""
        var hosts: Set<String> = []
        for rawLine in text.split(separator: "\n") {
            let line = ContainerdConfigProbe.stripComment(rawLine).trimmed(where: { " \t\r".contains($0) })
            if line.hasPrefix("[") {
                table = line
                if ["[registries.search]", "[registries.insecure]", "[registries.block]"].contains(line) {
                    warnings.append(
                        "warning: \(Self.registriesConf) uses the old v1 format (\(line)); containers/image refuses to "
                            + "mix it with v2 drop-ins like this one: convert it to the v2 format ([[registry]] tables).")
                }
                continue
            }
            guard table == "[[registry]]", let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmed(where: { " \t".contains($0) })
            if key == "prefix" || key == "location",
                let value = ContainerdConfigProbe.stringValue(line[line.index(after: equals)...].trimmed(where: { " \t".contains($0) }))
            {
                hosts.insert(value)
            }
        }
        for registry in registries where hosts.contains(registry.host) {
            warnings.append(
                "\(Self.registriesConf) also has a [[registry]] for \(registry.host); the drop-in's entry replaces it.")
        }
        return warnings
    }
}
