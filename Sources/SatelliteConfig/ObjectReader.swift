import OCICore
/// Reads one JSON object of a config or profile file: typed accessors that name the key's
/// full path in every error, and a final check that rejects keys nobody asked for.
struct ObjectReader {
    let path: String
    private let object: [String: JSONValue]
    private var known: Set<String> = []

    init(_ value: JSONValue, path: String) throws {
        guard case .object(let object) = value else {
            throw ConfigError(path: path, message: "expected an object, found \(value.typeName)")
        }
        self.path = path
        self.object = object
    }

    func keyPath(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    mutating func value(_ key: String) -> JSONValue? {
        known.insert(key)
        guard let value = object[key] else { return nil }
        if case .null = value { return nil }
        return value
    }

    mutating func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else {
            throw ConfigError(path: keyPath(key), message: "expected a string, found \(value.typeName)")
        }
        return text
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let flag) = value else {
            throw ConfigError(path: keyPath(key), message: "expected true or false, found \(value.typeName)")
        }
        return flag
    }

    mutating func integer(_ key: String, range: ClosedRange<Int64>) throws -> Int64? {
        guard let value = value(key) else { return nil }
        let number: Int64
        switch value {
        case .integer(let n): number = n
        case .number(let d) where d == d.rounded() && abs(d) < 9e18: number = Int64(d)
        default:
            throw ConfigError(path: keyPath(key), message: "expected a whole number, found \(value.typeName)")
        }
        guard range.contains(number) else {
            throw ConfigError(
                path: keyPath(key),
                message: "\(number) is out of range (\(range.lowerBound) to \(range.upperBound))")
        }
        return number
    }

    /// A size: a string with a unit ("512MiB", "4GB") or a byte count.
    mutating func size(_ key: String) throws -> Int64? {
        guard let value = value(key) else { return nil }
        switch value {
        case .integer(let n) where n >= 0: return n
        case .string(let text):
            if let bytes = Units.parseSize(text) { return bytes }
            throw ConfigError(
                path: keyPath(key),
                message: "\"\(text)\" is not a size; write a number with a unit such as \"512MiB\" or \"4GB\"")
        default:
            throw ConfigError(
                path: keyPath(key), message: "expected a size such as \"512MiB\" or a byte count, found \(value.typeName)")
        }
    }

    /// A size, or a share of the filesystem ("20%").
    mutating func sizeOrShare(_ key: String) throws -> StorageAmount? {
        guard let value = value(key) else { return nil }
        if case .string(let text) = value, text.hasSuffix("%") {
            guard let share = Units.parsePercent(text) else {
                throw ConfigError(path: keyPath(key), message: "\"\(text)\" is not a share between 0% and 100%")
            }
            return .share(share)
        }
        switch value {
        case .integer(let n) where n >= 0: return .bytes(n)
        case .string(let text):
            if let bytes = Units.parseSize(text) { return .bytes(bytes) }
            throw ConfigError(
                path: keyPath(key),
                message: "\"\(text)\" is not a size; write \"8GiB\", \"500MB\" or a share of the disk such as \"50%\"")
        default:
            throw ConfigError(
                path: keyPath(key), message: "expected a size such as \"8GiB\" or a share such as \"50%\", found \(value.typeName)")
        }
    }

    /// A duration string ("30s", "5m", "1h"), in nanoseconds.
    mutating func duration(_ key: String) throws -> Int64? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else {
            throw ConfigError(
                path: keyPath(key), message: "expected a duration string such as \"30s\" or \"5m\", found \(value.typeName)")
        }
        guard let nanoseconds = Units.parseDuration(text) else {
            throw ConfigError(
                path: keyPath(key), message: "\"\(text)\" is not a duration; write e.g. \"30s\", \"5m\", \"1h30m\"")
        }
        return nanoseconds
    }

    /// A rate ("2MB/s", "16Mbit/s", "0"), in bytes per second.
    mutating func rate(_ key: String) throws -> Int64? {
        guard let value = value(key) else { return nil }
        switch value {
        case .integer(let n) where n >= 0: return n
        case .string(let text):
            if let rate = Units.parseRate(text) { return rate }
            throw ConfigError(
                path: keyPath(key), message: "\"\(text)\" is not a rate; write e.g. \"2MB/s\", \"16Mbit/s\" or \"0\" for unlimited")
        default:
            throw ConfigError(path: keyPath(key), message: "expected a rate such as \"2MB/s\", found \(value.typeName)")
        }
    }

    mutating func object(_ key: String) throws -> ObjectReader? {
        guard let value = value(key) else { return nil }
        return try ObjectReader(value, path: keyPath(key))
    }

    mutating func array(_ key: String) throws -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard case .array(let items) = value else {
            throw ConfigError(path: keyPath(key), message: "expected an array, found \(value.typeName)")
        }
        return items
    }

    mutating func stringArray(_ key: String) throws -> [String]? {
        guard let items = try array(key) else { return nil }
        return try items.enumerated().map { index, item in
            guard case .string(let text) = item else {
                throw ConfigError(path: "\(keyPath(key))[\(index)]", message: "expected a string, found \(item.typeName)")
            }
            return text
        }
    }

    /// Throws for the first key (in sorted order) that no accessor asked for.
    func finish() throws {
        for key in object.keys.sorted() where !known.contains(key) {
            var message = "unknown key \"\(key)\""
            if let suggestion = known.min(by: { editDistance($0, key) < editDistance($1, key) }),
                editDistance(suggestion, key) <= max(2, key.count / 3)
            {
                message += " (did you mean \"\(suggestion)\"?)"
            } else if !known.isEmpty {
                message += "; known keys here: \(known.sorted().joined(separator: ", "))"
            }
            throw ConfigError(path: keyPath(key), message: message)
        }
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
