import OCICore
/// A configuration or profile problem, naming the key path and what is expected there.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Dotted key path such as `sync.bandwidth` or `hooks[1].timeout`; empty for the whole file.
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? message : "\(path): \(message)"
    }
}
