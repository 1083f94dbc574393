import Glibc

/// The `trust.policies` of the config: which repositories need a signature, by which keys,
/// and what happens without one. The first policy whose `match` glob matches the repository
/// applies.
public struct TrustPolicy: Sendable {
    public enum Action: String, Sendable {
        /// Refuse: the tag keeps its previous manifest, `trust-rejected` is raised.
        case require
        /// Publish anyway, log and count.
        case warn
    }

    public struct Rule: Sendable {
        public var match: String
        public var verifier: CosignVerifier
        public var action: Action

        public init(match: String, keys: [PublicKey], action: Action) {
            self.match = match
            verifier = CosignVerifier(keys: keys)
            self.action = action
        }
    }

    public var rules: [Rule]

    public init(rules: [Rule] = []) {
        self.rules = rules
    }

    /// The rule for `repository`, nil when none matches (no signature needed).
    /// `*` matches within one path segment, `**` across segments: `factory/**` matches
    /// `factory/a` and `factory/a/b`.
    public func rule(for repository: String) -> Rule? {
        rules.first { Self.glob($0.match, matches: repository) }
    }

    /// fnmatch with FNM_PATHNAME, after turning `**` into "any number of segments".
    public static func glob(_ pattern: String, matches text: String) -> Bool {
        if fnmatch(pattern, text, FNM_PATHNAME) == 0 { return true }
        guard pattern.utf8.contains(UInt8(ascii: "*")) else { return false }
        // `a/**` also matches a/b/c: try the `**` as every count of segments.
        let segments = text.split(separator: "/", omittingEmptySubsequences: false)
        let patternSegments = pattern.split(separator: "/", omittingEmptySubsequences: false)
        return match(patternSegments[...], segments[...])
    }

    private static func match(_ pattern: ArraySlice<Substring>, _ text: ArraySlice<Substring>) -> Bool {
        guard let first = pattern.first else { return text.isEmpty }
        if first == "**" {
            let rest = pattern.dropFirst()
            if rest.isEmpty { return !text.isEmpty }
            var index = text.startIndex
            while index <= text.endIndex {
                if match(rest, text[index...]) { return true }
                index += 1
            }
            return false
        }
        guard let segment = text.first, fnmatch(String(first), String(segment), 0) == 0 else { return false }
        return match(pattern.dropFirst(), text.dropFirst())
    }
}
