import OCICore
import JSONCoding
extension RuntimeConfig {
    static let dockerDaemonJSON = "/etc/docker/daemon.json"
    /// Per-registry CAs of Docker: `<dir>/<host:port>/ca.crt`.
    static let dockerCertsDirectory = "/etc/docker/certs.d"

    /// Adds satellite-lite to `registry-mirrors` in daemon.json (first, so Docker tries it
    /// first), and to `insecure-registries` when Docker would otherwise refuse plain HTTP.
    /// Every other key, the order of keys and the spelling of numbers are kept; the file is
    /// rewritten one member per line with its own indentation width.
    func dockerPlan() throws -> Plan {
        let path = Self.dockerDaemonJSON
        let before = try read(path)
        var document = JSON.object([])
        if let before, !before.allSatisfy({ [0x20, 0x09, 0x0a, 0x0d].contains($0) }) {
            do {
                document = try JSON.parse(before)
            } catch {
                throw Error("\(located(path)) is not valid JSON (\(error)); fix it first, it was left as it is")
            }
            guard case .object = document else {
                throw Error("\(located(path)) is not a JSON object; fix it first, it was left as it is")
            }
        }
        var changed = false
        func add(_ value: String, to key: String, first: Bool) throws {
            var list: [JSON] = []
            if let existing = document[key] {
                guard case .array(let elements) = existing else {
                    throw Error("\"\(key)\" in \(located(path)) is not an array; fix it first, it was left as it is")
                }
                list = elements
            }
            let present = list.contains {
                guard case .string(let text) = $0 else { return false }
                return Self.trimmedURL(text) == Self.trimmedURL(value)
            }
            guard !present else { return }
            if first { list.insert(.string(value), at: 0) } else { list.append(.string(value)) }
            document.set(key, .array(list))
            changed = true
        }
        try add(mirrorURL, to: "registry-mirrors", first: true)
        if mirrorIsPlainHTTP && !mirrorIsLoopback {
            try add(mirror, to: "insecure-registries", first: false)
        }
        let file =
            changed
            ? change(path, to: document.formatted(unit: before.map(JSON.indentationUnit) ?? "  "), before: before)
            : FileChange(path: path, location: located(path), before: before, after: before ?? [])

        var files = [file]
        var notes = [
            "Docker: run `systemctl reload docker` (registry-mirrors and insecure-registries are reloaded on SIGHUP)."
        ]
        if let ca = try mirrorCAChange(directory: Self.dockerCertsDirectory) {
            files.append(ca)
            notes.append("Docker: satellite-lite's CA is in \(ca.path); Docker reads it at each pull.")
        }
        let others = registries.filter { !$0.isDockerHub }.map(\.host)
        if !others.isEmpty {
            notes.append(
                "Docker uses registry-mirrors only for Docker Hub images: pulls of \(others.joined(separator: ", ")) "
                    + "images go straight to that registry. To pull them through satellite-lite with Docker, name them "
                    + "by the mirror: `docker pull \(mirror)/REPOSITORY:TAG`.")
        }
        return Plan(runtime: .docker, files: files, notes: notes)
    }

    /// A mirror URL compared without a trailing slash.
    private static func trimmedURL(_ text: String) -> String {
        var text = text
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}
