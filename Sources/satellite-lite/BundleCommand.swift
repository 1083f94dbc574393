import CommandParsing
import ContentStore
import JSONCoding
import Logging
import OCICore
import SatelliteConfig
import Sync
import Trust

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `bundle create|import|inspect`: signed, differential air-gap bundles (docs/air-gap.md).
enum BundleCommand: CLICommandGroup {
    static var spec: CommandSpec {
        CommandSpec(
            name: "bundle", abstract: "Air-gapped sites: write, import and inspect signed bundles.",
            subcommands: [.command(Create.self), .command(Import.self), .command(Inspect.self)])
    }

    struct Create: CLICommand {
        static var spec: CommandSpec {
            CommandSpec(
                name: "create",
                abstract: "On a connected machine: write the desired state's images into one bundle file.",
                options: [
                    .config,
                    .value("output", "file", required: true, help: "The bundle file to write."),
                    .value("base", "file", help: "A bundle the site applied: leave out what it carried (differential)."),
                    .value("have", "status.json", help: "`satellite-lite status --json` of the site: leave out what it holds."),
                    .value("sign", "key.pem", help: "Sign with this PEM ECDSA P-256 private key."),
                    .value("group", "name", help: "The group name written into the bundle's state (default: bundle)."),
                    .value("sequence", "n", help: "The bundle's sequence number (default: now in seconds, above its base)."),
                ])
        }

        var options: ConfigOption
        var output: String
        var base: String?
        var have: String?
        var sign: String?
        var group: String
        var sequence: Int64?

        init(_ arguments: ParsedArguments) throws {
            options = ConfigOption(arguments)
            output = arguments.value("output") ?? ""
            base = arguments.value("base")
            have = arguments.value("have")
            sign = arguments.value("sign")
            group = arguments.value("group") ?? "bundle"
            if base != nil, have != nil { throw ValidationError("use --base or --have, not both") }
            if let text = arguments.value("sequence") {
                guard let value = Int64(text), value > 0 else { throw ValidationError("--sequence must be a positive integer") }
                sequence = value
            }
        }

        func run() async throws {
            let settings = try Settings.load(configPath: options.config)
            let logger = Log.make("satellite-lite")
            let key = try sign.map(Self.loadPrivateKey)
            var target = BundleWriter.Target.full
            if let base {
                let document = try cli { try BundleWriter.document(of: base) }
                target = .init(have: Set(document.required.map(\.digest)), base: document.sequence)
            } else if let have {
                target = try Self.readHave(have)
            }
            let store = try BlobStore(configuration: settings.storeConfiguration)
            let client = try settings.makeClient()
            defer { Task { await client.shutdown() } }
            let engine = try settings.makeEngine(store: store, client: client, events: nil, logger: logger)
            let writer = BundleWriter(engine: engine, client: client, logger: logger)
            let task = Task {
                try await writer.write(
                    to: output, target: target, group: group, registry: settings.config.upstream?.url ?? "", sign: key,
                    sequence: sequence)
            }
            let stop = SignalWatcher(signals: [SIGTERM, SIGINT]) { _ in task.cancel() }
            defer { stop.cancel() }
            let report = try await cli { try await task.value }
            let document = report.document
            print(
                "bundle \(document.sequence)\(document.base.map { " (differential on \($0))" } ?? " (full)"): \(output), "
                    + "\(Units.formatSize(report.fileSize)), \(document.images.count) image(s), \(document.blobs.count) blob(s) carried of \(document.required.count)"
                    + (document.signer.map { ", signed by \($0)" } ?? ", unsigned"))
        }

        static func loadPrivateKey(_ path: String) throws -> PrivateKey {
            let bytes: [UInt8]
            do {
                bytes = try PosixFile.readAll(path: path, limit: 64 * 1024)
            } catch {
                throw CLIError("--sign: cannot read \(path): \(error)")
            }
            do {
                return try PrivateKey(pem: bytes, name: path)
            } catch {
                throw CLIError("--sign: \(error)")
            }
        }

        /// `status --json` of the site: the blobs it holds and its last bundle.
        static func readHave(_ path: String) throws -> BundleWriter.Target {
            struct Status: Decodable {
                struct Bundle: Decodable { var sequence: Int64 }
                var blobs: [String]?
                var bundle: Bundle?
            }
            let status: Status
            do {
                status = try JSONCoder.decode(Status.self, from: PosixFile.readAll(path: path, limit: 256 << 20))
            } catch {
                throw CLIError("--have \(path): not the output of satellite-lite status --json: \(error)")
            }
            guard let blobs = status.blobs else {
                throw CLIError("--have \(path) lists no blobs: take it with satellite-lite status --json of this version or later")
            }
            return .init(have: Set(blobs), base: status.bundle?.sequence ?? 0)
        }
    }

    struct Import: CLICommand {
        static var spec: CommandSpec {
            CommandSpec(
                name: "import", abstract: "Verify (signature, every digest) and import a bundle; resumable.",
                options: [.config], positional: PositionalSpec(name: "file", help: "The bundle file."))
        }

        var options: ConfigOption
        var file: String

        init(_ arguments: ParsedArguments) throws {
            options = ConfigOption(arguments)
            guard arguments.positionals.count == 1, let file = arguments.positionals.first else {
                throw ValidationError("name exactly one bundle file")
            }
            self.file = file
        }

        func run() async throws {
            let settings = try Settings.load(configPath: options.config)
            let logger = Log.make("satellite-lite")
            let store = try BlobStore(configuration: settings.storeConfiguration)
            let hooks = try HookBridge.make(settings: settings, store: store, logger: logger)
            let importer = try settings.makeBundleImporter(store: store, events: hooks, logger: logger)
            let task = Task { try await importer.importBundle(at: file) }
            let stop = SignalWatcher(signals: [SIGTERM, SIGINT]) { _ in task.cancel() }
            defer { stop.cancel() }
            let report: BundleImporter.Report
            do {
                report = try await task.value
            } catch {
                await hooks?.drain()
                throw CLIError("\(error)")
            }
            await hooks?.drain()
            print(report.summary(file: file))
            if !report.complete { throw ExitCode.failure }
        }
    }

    struct Inspect: CLICommand {
        static var spec: CommandSpec {
            CommandSpec(
                name: "inspect", abstract: "What a bundle holds, its signer, its sequence, and what the local store lacks.",
                options: [.config, .json], positional: PositionalSpec(name: "file", help: "The bundle file."))
        }

        var options: ConfigOption
        var json: Bool
        var file: String

        init(_ arguments: ParsedArguments) throws {
            options = ConfigOption(arguments)
            json = arguments.flag(OptionSpec.json.name)
            guard arguments.positionals.count == 1, let file = arguments.positionals.first else {
                throw ValidationError("name exactly one bundle file")
            }
            self.file = file
        }

        struct Report: Encodable {
            var file: String
            var sequence: Int64
            var base: Int64?
            var created: String
            var signer: String?
            /// verified (by a key of bundles.keys), unverified (signed, no matching key given), unsigned.
            var signature: String
            var verifiedBy: String?
            var images: [BundleDocument.Image]
            var carriedBlobs: Int
            var carriedBytes: Int64
            var requiredBytes: Int64
            /// Bytes of carried blobs the local store lacks (nil without a local store).
            var newBytes: Int64?
            var lastApplied: Int64?
        }

        func run() throws {
            let settings = try Settings.load(configPath: options.config)
            let keys = try settings.bundleKeys()
            let fd: Int32
            do {
                fd = try PosixFile.open(file, O_RDONLY)
            } catch {
                throw CLIError("cannot open \(file): \(error)")
            }
            defer { PosixFile.close(fd) }
            let (document, signer, hasSignature) = try cli { () throws -> (BundleDocument, PublicKey?, Bool) in
                let reader = try TarReader(fd: fd, path: file)
                do {
                    let read = try BundleImporter.readDocument(reader, keys: keys, allowUnsigned: true)
                    return (read.document, read.signer, read.signed)
                } catch let error as BundleError where error.code == .signature {
                    // Show what the bundle says even when no configured key verifies it.
                    let again = try TarReader(fd: fd, path: file)
                    let read = try BundleImporter.readDocument(again, keys: [], allowUnsigned: true)
                    return (read.document, nil, read.signed)
                }
            }
            var report = Report(
                file: file, sequence: document.sequence, base: document.base, created: document.created, signer: document.signer,
                signature: signer != nil ? "verified" : (hasSignature ? "unverified" : "unsigned"), verifiedBy: signer?.name,
                images: document.images, carriedBlobs: document.blobs.count, carriedBytes: document.carriedBytes,
                requiredBytes: document.requiredBytes)
            if PosixFile.exists(settings.config.storage.path) {
                let store = try BlobStore(configuration: settings.storeConfiguration)
                report.newBytes = document.blobs.filter { Digest($0.digest).map { !store.hasBlob($0) } ?? true }.reduce(0) { $0 + $1.size }
                report.lastApplied = BundleRecord.read(store: store)?.sequence
            }
            if json {
                try printJSON(report)
                return
            }
            print("bundle: \(file)")
            print("sequence: \(report.sequence)\(report.base.map { ", differential on \($0)" } ?? ", full"), created \(report.created)")
            print("signer: \(report.signer ?? "none") (\(report.signature)\(report.verifiedBy.map { " by \($0)" } ?? ""))")
            print("images: \(report.images.count)")
            for image in report.images {
                print("  \(image.reference) \(image.digest) \(Units.formatSize(image.size))")
            }
            print("blobs: \(report.carriedBlobs) carried, \(Units.formatSize(report.carriedBytes)) of \(Units.formatSize(report.requiredBytes)) the state needs")
            if let newBytes = report.newBytes {
                print("new to this store: \(Units.formatSize(newBytes)); last bundle applied here: \(report.lastApplied.map(String.init) ?? "none")")
            }
        }
    }
}

/// Runs `body`, turning a ``BundleError`` into the CLI's one-line error.
func cli<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as BundleError {
        throw CLIError("\(error)")
    }
}

func cli<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as BundleError {
        throw CLIError("\(error)")
    } catch let error as TarReader.Error {
        throw CLIError("\(error)")
    }
}

extension BundleImporter.Report {
    func summary(file: String) -> String {
        if alreadyApplied { return "bundle \(sequence): already applied, nothing to do" }
        var lines = [
            "bundle \(sequence)\(base.map { " (on \($0))" } ?? ""): \(images.count) image(s), \(blobsWritten) blob(s) written "
                + "(\(Units.formatSize(bytesWritten))), \(blobsSkipped) already here, \(blobsResumed) resumed"
        ]
        for image in updated { lines.append("  updated: \(image)") }
        for image in removed { lines.append("  removed: \(image)") }
        for failure in failures { lines.append("  FAILED \(failure.image): \(failure.error)") }
        return lines.joined(separator: "\n")
    }
}

extension Settings {
    /// The public keys of `bundles.keys`, checked.
    func bundleKeys() throws -> [PublicKey] {
        try config.bundles.keys.map { path in
            let bytes: [UInt8]
            do {
                bytes = try PosixFile.readAll(path: path, limit: 64 * 1024)
            } catch {
                throw CLIError("bundles.keys: cannot read the key \(path): \(error)")
            }
            do {
                return try PublicKey(pem: bytes, name: path)
            } catch {
                throw CLIError("bundles.keys: \(error)")
            }
        }
    }

    /// The watch folder's task in `run` (nil without `bundles.watch`).
    func startBundleWatch(store: BlobStore, hooks: HookBridge?, logger: Logger) throws -> Task<Void, Never>? {
        guard let folder = config.bundles.watch else { return nil }
        let watcher = BundleWatcher(
            folder: folder, settle: config.bundles.settle, importer: try makeBundleImporter(store: store, events: hooks, logger: logger),
            logger: logger)
        return Task { await watcher.run(interval: 1_000_000_000) }
    }

    func makeBundleImporter(store: BlobStore, events: (any SyncEventSink)?, logger: Logger) throws -> BundleImporter {
        let trust = try makeTrustPolicy()
        return BundleImporter(
            configuration: .init(
                keys: try bundleKeys(), allowUnsigned: config.bundles.unsigned, quota: quotaPolicy(store: store),
                bufferSize: profile.io.bufferSize),
            store: store, events: events, policy: makePublishPolicy(trust, events: events, logger: logger), logger: logger)
    }
}
