/// Names and references of Ground Control's state artifacts in the central registry.
///
/// Harbor Satellite writes `<registry URL>/satellite/satellite-state/<name>/state:latest`
/// (internal/groundcontrol/utils/helper.go, `AssembleSatelliteState`, and likewise for
/// group and config states), with the registry URL as configured, scheme included.
public enum FleetNames {
    /// The project (first path segment) every state artifact lives in.
    public static let project = "satellite"

    public static func satelliteStateRepository(_ satellite: String) -> String {
        "\(project)/satellite-state/\(satellite)/state"
    }

    public static func groupStateRepository(_ group: String) -> String {
        "\(project)/group-state/\(group)/state"
    }

    public static func configStateRepository(_ config: String) -> String {
        "\(project)/config-state/\(config)/state"
    }

    /// `<registryURL>/<repository>:latest`, the registry URL as given (a trailing `/` dropped).
    public static func reference(registryURL: String, repository: String, tag: String = "latest") -> String {
        var base = registryURL
        while base.hasSuffix("/") { base.removeLast() }
        return base.isEmpty ? "\(repository):\(tag)" : "\(base)/\(repository):\(tag)"
    }

    /// The satellite's name in a satellite-state reference, as Harbor Satellite's agent
    /// extracts it (`extractSatelliteNameFromURL`): the segment after `satellite-state`.
    public static func satelliteName(inStateReference reference: String) -> String? {
        let parts = reference.split(separator: "/", omittingEmptySubsequences: true)
        guard let index = parts.firstIndex(of: "satellite-state"), index + 1 < parts.count else { return nil }
        let name = String(parts[index + 1])
        return isValid(name) ? name : nil
    }

    /// Whether `name` can name a satellite, group or config: it becomes one path component
    /// of a repository, so the OCI rule applies (lowercase letters and digits, single
    /// separators `.`, `_`, `__` or runs of `-` between them), at most 63 characters.
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func isAlnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) }
        guard let first = bytes.first, let last = bytes.last, isAlnum(first), isAlnum(last) else { return false }
        var index = 0
        while index < bytes.count {
            if isAlnum(bytes[index]) {
                index += 1
                continue
            }
            var end = index
            while end < bytes.count, !isAlnum(bytes[end]) { end += 1 }
            let separator = bytes[index..<end]
            let ok =
                separator.elementsEqual([0x2e]) || separator.elementsEqual([0x5f]) || separator.elementsEqual([0x5f, 0x5f])
                || separator.allSatisfy { $0 == 0x2d }
            guard ok else { return false }
            index = end
        }
        return true
    }
}
