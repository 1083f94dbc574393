import Testing
import TestSupport

@testable import SatelliteConfig

/// Every config example in docs/ (fenced as ```json config) and every profile in
/// hw-profiles/ must load, so the documentation cannot drift from the code.
@Suite struct DocsExamplesTests {
    @Test func configExamplesLoad() throws {
        let examples = try DocExamples.configBlocks()
        #expect(examples.count >= 4)
        for (file, text) in examples {
            do {
                let config = try ConfigFile(text: text, source: file)
                _ = try Settings.resolve(config, source: file)
            } catch {
                Issue.record("example in \(file) does not load: \(error)\n\(text)")
            }
        }
    }

    @Test func everyDocumentedKeyIsAccepted() throws {
        // The keys table: each `a.b` in the first column must be known to the parser, which
        // rejects unknown keys (an unknown one would fail with "unknown key").
        let text = TestEnvironment.read("\(TestEnvironment.repositoryRoot)/docs/configuration.md") ?? ""
        var keys: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let key = line.dropFirst(3).prefix(while: { $0 != "`" })
            if key.contains(".") { keys.append(String(key)) }
        }
        #expect(keys.count > 20)
        for key in keys where !key.hasPrefix("hooks[]") {
            let parts = key.split(separator: ".")
            var json = #"{"\#(parts[0])": {"\#(parts[1])": null}}"#
            if parts[1].hasSuffix("[]"), parts.count == 3 {
                // An array of objects (trust.policies[].match): one member with only that key.
                json = #"{"\#(parts[0])": {"\#(parts[1].dropLast(2))": [{"\#(parts[2])": null}]}}"#
            }
            do {
                _ = try ConfigFile(text: json, source: "docs")
            } catch let error as ConfigError {
                #expect(!error.message.contains("unknown key"), "\(key): \(error)")
            }
        }
    }

    /// The backticked names in the first column of a doc's key tables: "`a.b`, `a.c`" and
    /// "`a.min`/`max`" (a name without a dot takes the previous one's section).
    static func documentedKeys(_ file: String) -> Set<String> {
        let text = TestEnvironment.read("\(TestEnvironment.repositoryRoot)/\(file)") ?? ""
        var keys = Set<String>()
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let column = line.dropFirst(2).prefix { $0 != "|" }
            var section = ""
            for (index, part) in column.split(separator: "`", omittingEmptySubsequences: false).enumerated() where index % 2 == 1 {
                var key = String(part)
                if let dot = key.lastIndex(of: ".") {
                    section = String(key[..<dot])
                } else if !section.isEmpty {
                    key = "\(section).\(key)"
                }
                keys.insert(key)
            }
        }
        return keys
    }

    /// The keys the parser knows in one section, from its own error for an unknown key
    /// ("…; known keys here: a, b, c").
    static func knownKeys(_ error: ConfigError) -> [String] {
        guard let range = error.message.firstRange(of: "known keys here: ") else { return [] }
        return error.message[range.upperBound...].split(separator: ", ").map(String.init)
    }

    static func isDocumented(_ key: String, in documented: Set<String>) -> Bool {
        if documented.contains(key) { return true }
        // A documented parent ("platform" for "platform.os") or a documented member
        // ("storage.path" for "storage", "hooks[].on" for "hooks").
        var parent = key
        while let dot = parent.lastIndex(of: ".") {
            parent = String(parent[..<dot])
            if documented.contains(parent) { return true }
        }
        return documented.contains { $0.hasPrefix(key + ".") || $0.hasPrefix(key + "[]") }
    }

    /// The other direction: every key the config parser accepts is in docs/configuration.md,
    /// and every key a profile has is in docs/hardware-profiles.md.
    @Test func everyAcceptedKeyIsDocumented() throws {
        let unknown = "zzzzzzzzzzzzzzzz"
        let configDocs = Self.documentedKeys("docs/configuration.md")
        let sections: [(String, String)] = [
            ("", #"{"\#(unknown)": 1}"#),
            ("storage.", #"{"storage": {"\#(unknown)": 1}}"#),
            ("registry.", #"{"registry": {"\#(unknown)": 1}}"#),
            ("upstream.", #"{"upstream": {"url": "http://h", "\#(unknown)": 1}}"#),
            ("groundControl.", #"{"groundControl": {"url": "http://h", "\#(unknown)": 1}}"#),
            ("state.", #"{"state": {"\#(unknown)": 1}}"#),
            ("sync.", #"{"sync": {"\#(unknown)": 1}}"#),
            ("trust.", #"{"trust": {"\#(unknown)": 1}}"#),
            ("peers.", #"{"peers": {"\#(unknown)": 1}}"#),
            ("trust.policies[].", #"{"trust": {"policies": [{"match": "a/**", "keys": ["k.pub"], "\#(unknown)": 1}]}}"#),
            ("hooks[].", #"{"hooks": [{"on": "image-updated", "run": "true", "\#(unknown)": 1}]}"#),
        ]
        var checked = 0
        for (prefix, json) in sections {
            do {
                _ = try ConfigFile(text: json, source: "test")
                Issue.record("\(json) was accepted")
            } catch let error as ConfigError {
                let known = Self.knownKeys(error)
                #expect(!known.isEmpty, "\(error)")
                for key in known {
                    checked += 1
                    #expect(Self.isDocumented(prefix + key, in: configDocs), "config key \(prefix + key) is not in docs/configuration.md")
                }
            }
        }
        #expect(checked > 20)

        let profileDocs = Self.documentedKeys("docs/hardware-profiles.md")
        let profileText = try #require(TestEnvironment.read("\(TestEnvironment.repositoryRoot)/hw-profiles/generic-amd64.json"))
        guard case .object(let profile) = try JSONValue.parse(Array(profileText.utf8), source: "generic-amd64.json") else {
            Issue.record("the profile is not an object")
            return
        }
        var profileChecked = 0
        for section in [""] + profile.keys.sorted() {
            var copy = profile
            if section.isEmpty {
                copy[unknown] = .integer(1)
            } else {
                guard case .object(var inner) = copy[section] else { continue }
                inner[unknown] = .integer(1)
                copy[section] = .object(inner)
            }
            do {
                _ = try HardwareProfile(json: .object(copy), source: "test")
                Issue.record("a profile with \(section).\(unknown) was accepted")
            } catch let error as ConfigError {
                for key in Self.knownKeys(error) where !(section.isEmpty && (key == "name" || key == "description")) {
                    profileChecked += 1
                    let path = section.isEmpty ? key : "\(section).\(key)"
                    #expect(Self.isDocumented(path, in: profileDocs), "profile key \(path) is not in docs/hardware-profiles.md")
                }
            }
        }
        #expect(profileChecked > 20)
    }
}
