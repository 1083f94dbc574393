/// The config examples of the documentation: every block fenced as ```json config in
/// docs/*.md and README.md, as (file, text).
public enum DocExamples {
    public static func configBlocks() throws -> [(file: String, text: String)] {
        let root = TestEnvironment.repositoryRoot
        let listing = try Subprocess.run(["sh", "-c", "ls \(root)/docs/*.md \(root)/README.md"])
        var found: [(file: String, text: String)] = []
        for file in listing.output.split(separator: "\n").map(String.init) {
            guard let text = TestEnvironment.read(file) else { continue }
            var block: [Substring]?
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                let trimmed = line.drop { $0 == " " }
                if block == nil, trimmed == "```json config" {
                    block = []
                } else if block != nil, trimmed == "```" {
                    found.append((file, (block ?? []).joined(separator: "\n")))
                    block = nil
                } else {
                    block?.append(line)
                }
            }
        }
        return found
    }
}
