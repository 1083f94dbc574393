import Fleet
import ContentStore
import OCICore

/// The images the store holds, for the heartbeat: every tag with the bytes its manifest
/// needs (config and layers, and for an index the children present).
enum StoreInventory {
    static func images(store: BlobStore) -> [CachedImage] {
        var images: [CachedImage] = []
        for repository in (try? store.repositories()) ?? [] {
            for tag in ((try? store.tags(repository)) ?? []).sorted() {
                guard let digest = store.resolveTag(repository, tag) else { continue }
                images.append(
                    CachedImage(reference: "\(repository):\(tag)@\(digest)", sizeBytes: size(of: digest, store: store, depth: 0)))
            }
        }
        return images
    }

    static func size(of digest: Digest, store: BlobStore, depth: Int) -> Int64 {
        guard let bytes = try? store.readBlob(digest, limit: Manifest.maxSize) else { return 0 }
        var total = Int64(bytes.count)
        guard let manifest = try? Manifest.parse(bytes) else { return total }
        if let config = manifest.config { total += config.size }
        for layer in manifest.layers ?? [] { total += layer.size }
        if depth < 2 {
            for child in manifest.manifests ?? [] {
                if let childDigest = Digest(child.digest), store.hasBlob(childDigest) {
                    total += size(of: childDigest, store: store, depth: depth + 1)
                }
            }
        }
        return total
    }
}
