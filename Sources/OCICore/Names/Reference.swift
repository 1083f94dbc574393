/// A manifest reference: a tag or a digest.
public enum Reference: Hashable, Sendable, CustomStringConvertible {
    case tag(String)
    case digest(Digest)

    /// Tags match `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`: never "." or "..", never a slash.
    public static func isValidTag(_ text: some StringProtocol) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool {
            (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f
        }
        guard word(first) else { return false }
        return bytes.dropFirst().allSatisfy { word($0) || $0 == 0x2e || $0 == 0x2d }
    }

    public init?(_ text: some StringProtocol) {
        if let digest = Digest(text) {
            self = .digest(digest)
        } else if Self.isValidTag(text) {
            self = .tag(String(text))
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .tag(let tag): tag
        case .digest(let digest): digest.description
        }
    }

    public var tag: String? {
        if case .tag(let tag) = self { return tag }
        return nil
    }

    public var digest: Digest? {
        if case .digest(let digest) = self { return digest }
        return nil
    }
}

/// `repository[:tag][@digest]` as written in `state.images`.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    public var repository: RepositoryName
    public var tag: String?
    public var digest: Digest?

    public init(repository: RepositoryName, tag: String?, digest: Digest?) {
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Parses `library/nginx:1.27`, `factory/sensor@sha256:…` or `repo:tag@sha256:…`.
    /// A bare repository means `:latest`.
    public init?(_ text: String) {
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            guard let parsed = Digest(rest[rest.index(after: at)...]) else { return nil }
            digest = parsed
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let candidate = rest[rest.index(after: colon)...]
            guard Reference.isValidTag(candidate) else { return nil }
            tag = String(candidate)
            rest = rest[..<colon]
        }
        guard let repository = RepositoryName(rest) else { return nil }
        if tag == nil, digest == nil { tag = "latest" }
        self.init(repository: repository, tag: tag, digest: digest)
    }

    public var description: String {
        var text = repository.value
        if let tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        return text
    }
}
