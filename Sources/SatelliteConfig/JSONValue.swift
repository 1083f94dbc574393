import OCICore
import JSONCoding

/// A parsed JSON document, kept generic so that the config loader can reject unknown keys
/// and name the exact path of every error (JSONDecoder silently ignores unknown keys).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses a JSON document.
    ///
    /// Throws ``ConfigError`` with the decoder's explanation when the text is not JSON.
    public static func parse(_ bytes: [UInt8], source: String) throws -> JSONValue {
        do {
            return JSONValue(try JSON.parse(bytes))
        } catch let error as JSONError {
            throw ConfigError(path: "", message: "\(source) is not valid JSON: \(error)")
        }
    }

    public init(_ json: JSON) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let text): self = Int64(text).map { .integer($0) } ?? .number(Double(text) ?? .nan)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map(JSONValue.init))
        case .object(let members):
            var object: [String: JSONValue] = [:]
            for (key, value) in members { object[key] = JSONValue(value) }
            self = .object(object)
        }
    }

    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

