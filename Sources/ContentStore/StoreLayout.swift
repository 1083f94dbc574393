import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every path under `storage.path`, in one place: no other module spells a folder of the
/// store.
///
/// ```
/// blobs/<algorithm>/ab/abcd…                 verified content, immutable
/// ingest/<algorithm>-abcd…  (+ .offset, .follow, .claim) downloads in progress (resumable,
///                                           locked; .follow: fed by a peer's download;
///                                           .claim: deciding who fetches it for the site)
/// ingest/put-…                               small content being stored
/// uploads/<id>/{data,info}                   push sessions in progress
/// repositories/<name>/_layers/…              blob links, manifest revisions, tags, referrers
/// sync/{lock,status.json,managed.json}       the writer lock, sync status, the agent's tags
/// sync/{managed.lock,wan.json}               managed.json's lock across processes, WAN ledger
/// gc/{access,reads,changes}                  last use and last read of each blob, change counter
/// quarantine/                                blobs verify found corrupt
/// hooks/                                     the hook journal
/// fleet/{link,config,status}.json            the Ground Control link (FleetLink; link and config 0600)
/// bundles/{applied,watched}.json             the last bundle imported, the watch folder's record
/// ```
public struct StoreLayout: Sendable, Equatable {
    /// Absolute path of the store.
    public let root: String

    /// `path` made absolute (against the working directory) and without trailing slashes.
    public init(root path: String) {
        var root = path
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        if !root.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: 4096)
            if getcwd(&buffer, buffer.count) != nil {
                let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                root = root.hasPrefix("./") ? "\(cwd)/\(root.dropFirst(2))" : "\(cwd)/\(root)"
            }
        }
        self.root = root
    }

    /// The folders the store creates when it opens.
    var folders: [String] { [blobs(.sha256), blobs(.sha512), ingest, uploads, repositories] }

    // MARK: Content

    public func blobs(_ algorithm: Digest.Algorithm) -> String { "\(root)/blobs/\(algorithm.rawValue)" }

    public func blob(_ digest: Digest) -> String {
        "\(blobs(digest.algorithm))/\(digest.hex.prefix(2))/\(digest.hex)"
    }

    public var ingest: String { "\(root)/ingest" }

    /// The resumable download of `digest`; its sidecar is `<path>.offset`.
    public func download(_ digest: Digest) -> String { "\(ingest)/\(digest.algorithm.rawValue)-\(digest.hex)" }

    /// A fresh temporary file for small content (`put-` files are swept at start).
    public func temporaryPut() -> String { "\(ingest)/put-\(PosixFile.randomToken())" }

    public var uploads: String { "\(root)/uploads" }
    public func upload(_ id: String) -> String { "\(uploads)/\(id)" }

    public var quarantine: String { "\(root)/quarantine" }

    // MARK: Repositories

    public var repositories: String { "\(root)/repositories" }
    public func repository(_ repository: RepositoryName) -> String { "\(repositories)/\(repository.value)" }

    public func layerLink(_ repository: RepositoryName, _ digest: Digest) -> String {
        "\(self.repository(repository))/_layers/\(digest.algorithm.rawValue)/\(digest.hex)"
    }

    public func revision(_ repository: RepositoryName, _ digest: Digest) -> String {
        "\(self.repository(repository))/_manifests/revisions/\(digest.algorithm.rawValue)/\(digest.hex)"
    }

    public func tags(_ repository: RepositoryName) -> String { "\(self.repository(repository))/_manifests/tags" }

    public func referrers(_ repository: RepositoryName, subject: Digest) -> String {
        "\(self.repository(repository))/_referrers/\(subject.algorithm.rawValue)/\(subject.hex)"
    }

    // MARK: State of the agent

    public var sync: String { "\(root)/sync" }
    public var writerLock: String { "\(sync)/lock" }
    public var syncStatus: String { "\(sync)/status.json" }
    public var managedTags: String { "\(sync)/managed.json" }
    /// WAN bytes per day and month (the `sync.budget` ledger, Sync's WANLedger).
    public var wanLedger: String { "\(sync)/wan.json" }

    public var gc: String { "\(root)/gc" }
    public var accessLog: String { "\(gc)/access" }
    public var readLog: String { "\(gc)/reads" }
    /// The store-wide change counter of the blobs (its size; ``StoreUsage``).
    public var usageCounter: String { "\(gc)/changes" }

    public var hooks: String { "\(root)/hooks" }

    /// Air-gap bundles: `applied.json` (the last bundle imported) and `watched.json` (the
    /// watch folder's files already handled).
    public var bundles: String { "\(root)/bundles" }
    public var appliedBundle: String { "\(bundles)/applied.json" }
    public var watchedBundles: String { "\(bundles)/watched.json" }

    /// The fleet link's folder (its files are named by FleetLink's `FleetFiles`).
    public var fleet: String { "\(root)/fleet" }
}
