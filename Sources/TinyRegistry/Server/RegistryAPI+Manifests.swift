import ContentStore
import OCICore
import JSONCoding
import NIOCore
import NIOHTTP1

extension RegistryAPI {
    /// Resolves a reference to a manifest digest of the repository.
    func resolve(_ name: RepositoryName, _ reference: Reference) throws -> (Digest, String) {
        let digest: Digest
        switch reference {
        case .tag(let tag):
            guard let tagged = store.resolveTag(name, tag) else {
                throw RegistryError(.manifestUnknown, "manifest \(name):\(tag) is not known to this registry")
            }
            digest = tagged
        case .digest(let given):
            digest = given
        }
        guard let mediaType = store.manifestMediaType(name, digest) else {
            throw RegistryError(.manifestUnknown, "manifest \(name)@\(digest) is not known to this registry")
        }
        return (digest, mediaType)
    }

    func getManifest(_ request: Request, _ name: RepositoryName, _ reference: Reference) throws -> Response {
        let (digest, mediaType) = try resolve(name, reference)
        store.noteRead(digest)
        let (fd, size): (Int32, Int64)
        do {
            (fd, size) = try store.openBlob(digest)
        } catch let error as PosixError where error.isNotFound {
            throw RegistryError(.manifestUnknown, "manifest \(name)@\(digest) is not known to this registry")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: mediaType)
        headers.add(name: "Docker-Content-Digest", value: digest.description)
        headers.add(name: "ETag", value: "\"\(digest)\"")
        headers.add(name: "Content-Length", value: String(size))
        if request.method == .HEAD {
            PosixFile.close(fd)
            return Response(status: .ok, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .file(fd: fd, offset: 0, length: size))
    }

    func putManifest(_ request: Request, _ name: RepositoryName, _ reference: Reference, body: [UInt8]) throws -> Response {
        guard body.count <= Manifest.maxSize else {
            throw RegistryError(
                .sizeInvalid, "manifest is larger than \(Manifest.maxSize) bytes", status: .payloadTooLarge)
        }
        let manifest: Manifest
        do {
            manifest = try Manifest.parse(body)
        } catch {
            throw RegistryError(.manifestInvalid, "\(error)")
        }
        let contentType = request.headers.first(name: "content-type").map {
            String($0.split(separator: ";", maxSplits: 1)[0]).trimmed()
        }
        let mediaType = manifest.effectiveMediaType(contentType: contentType)
        if let declared = manifest.mediaType, !declared.isEmpty, let contentType, !contentType.isEmpty,
            contentType != declared, contentType != "application/json"
        {
            throw RegistryError(
                .manifestInvalid, "Content-Type \(contentType) does not match the manifest's mediaType \(declared)")
        }
        var tags: [String] = request.queryValues["tag"] ?? []
        if let tag = reference.tag { tags.insert(tag, at: 0) }
        for tag in tags where !Reference.isValidTag(tag) {
            throw RegistryError(.manifestInvalid, "invalid tag \"\(tag.prefix(200))\"", status: .badRequest)
        }
        var algorithm = reference.digest?.algorithm ?? .sha256
        if case .tag(let tag) = reference, let current = store.resolveTag(name, tag), current.algorithm != algorithm,
            ContentHasher.digest(of: body, algorithm: current.algorithm) == current
        {
            // Re-pushing by tag the very manifest the tag holds under another algorithm (it
            // was pushed by a sha512 digest): keep its digest rather than re-address it.
            algorithm = current.algorithm
        }
        let digest = ContentHasher.digest(of: body, algorithm: algorithm)
        if let expected = reference.digest, expected != digest {
            throw RegistryError(.digestInvalid, "manifest hashes to \(digest), not \(expected)")
        }
        // An image's config and layers must be here; an index may be sparse (a gateway keeps
        // only its own platform), so its children are not required.
        if !manifest.isIndex {
            for descriptor in [manifest.config].compactMap({ $0 }) + (manifest.layers ?? []) {
                if MediaType.isNonDistributable(descriptor.mediaType) || !(descriptor.urls ?? []).isEmpty { continue }
                guard let blob = Digest(descriptor.digest), store.repositoryHasBlob(name, blob) else {
                    throw RegistryError(
                        .manifestBlobUnknown, "blob \(descriptor.digest) referenced by the manifest is not in repository \(name)")
                }
            }
        }
        do {
            try publisher.publish(
                ImagePublisher.Image(
                    repository: name, tags: tags,
                    top: ImagePublisher.ManifestContent(digest: digest, mediaType: mediaType, bytes: body, manifest: manifest),
                    origin: .push))
        } catch ImagePublisher.Error.refused(let reason) {
            throw RegistryError(.denied, "manifest \(name)@\(digest) refused: \(reason)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Location", value: "/v2/\(name)/manifests/\(digest)")
        headers.add(name: "Docker-Content-Digest", value: digest.description)
        headers.add(name: "Content-Length", value: "0")
        if let subject = manifest.subject {
            headers.add(name: "OCI-Subject", value: subject.digest)
        }
        for tag in request.queryValues["tag"] ?? [] {
            headers.add(name: "OCI-Tag", value: tag)
        }
        return Response(status: .created, headers: headers)
    }

    func deleteManifest(_ name: RepositoryName, _ reference: Reference) throws -> Response {
        switch reference {
        case .tag(let tag):
            guard try store.deleteTag(name, tag) else {
                throw RegistryError(.manifestUnknown, "tag \(name):\(tag) is not known to this registry")
            }
        case .digest(let digest):
            guard store.manifestMediaType(name, digest) != nil else {
                throw RegistryError(.manifestUnknown, "manifest \(name)@\(digest) is not known to this registry")
            }
            if let bytes = try? store.readBlob(digest, limit: Manifest.maxSize),
                let manifest = try? Manifest.parse(bytes),
                let subject = manifest.subject.flatMap({ Digest($0.digest) })
            {
                try store.removeReferrer(digest, subject: subject, in: name)
            }
            for tag in try store.tags(name) where store.resolveTag(name, tag) == digest {
                _ = try store.deleteTag(name, tag)
            }
            _ = try store.unlinkManifest(digest, from: name)
        }
        return Response(status: .accepted, headers: ["Content-Length": "0"])
    }
}
