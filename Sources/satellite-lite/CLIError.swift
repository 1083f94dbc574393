import CommandParsing
import ContentStore
import OCICore
import Logging

/// A failure the CLI reports as one line (`Error: …`) and exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

enum Log {
    /// A logger writing to stderr; SATELLITE_LOG_LEVEL (trace…critical) sets the level.
    static func make(_ label: String) -> Logger {
        var logger = Logger(label: label) { label in StreamLogHandler.standardError(label: label) }
        if let text = getenvString("SATELLITE_LOG_LEVEL"), let level = Logger.Level(rawValue: text) {
            logger.logLevel = level
        }
        return logger
    }
}
