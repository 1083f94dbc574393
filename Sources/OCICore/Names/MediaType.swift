/// The manifest media types the registry and the sync client know.
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let ociEmpty = "application/vnd.oci.empty.v1+json"

    /// Every manifest type, for `Accept` headers.
    public static let manifestTypes = [ociManifest, ociIndex, dockerManifest, dockerManifestList]

    public static func isIndex(_ type: String) -> Bool {
        type == ociIndex || type == dockerManifestList
    }

    /// Layer types whose bytes may live elsewhere (foreign / non-distributable layers).
    public static func isNonDistributable(_ type: String) -> Bool {
        type.containsText(".nondistributable.") || type.hasPrefix("application/vnd.docker.image.rootfs.foreign.")
    }
}
