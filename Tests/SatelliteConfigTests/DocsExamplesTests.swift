import Testing
import TestSupport

@testable import SatelliteConfig

/// Every config example in docs/ (fenced as ```json config) and every profile in
/// hw-profiles/ must load, so the documentation cannot drift from the code.
@Suite struct DocsExamplesTests {
    static func examples() throws -> [(String, String)] {
        let listing = try Subprocess.run(["sh", "-c", "ls \(TestEnvironment.repositoryRoot)/docs/*.md \(TestEnvironment.repositoryRoot)/README.md"])
        var found: [(String, String)] = []
        for file in listing.output.split(separator: "\n").map(String.init) {
            guard let text = TestEnvironment.read(file) else { continue }
            var block: [Substring]?
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                if block == nil, line.trimmed() == "```json config" {
                    block = []
                } else if block != nil, line.trimmed() == "```" {
                    found.append((file, (block ?? []).joined(separator: "\n")))
                    block = nil
                } else {
                    block?.append(line)
                }
            }
        }
        return found
    }

    @Test func configExamplesLoad() throws {
        let examples = try Self.examples()
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
            let json = #"{"\#(parts[0])": {"\#(parts[1])": null}}"#
            do {
                _ = try ConfigFile(text: json, source: "docs")
            } catch let error as ConfigError {
                #expect(!error.message.contains("unknown key"), "\(key): \(error)")
            }
        }
    }
}
