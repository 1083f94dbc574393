/// Codable over ``JSON``: `JSONCoder.decode(T.self, from: bytes)` and
/// `JSONCoder.encode(value)`, in place of Foundation's JSONDecoder and JSONEncoder.
public enum JSONCoder {
    /// Decodes `type` from a JSON document. Unknown keys are ignored, as with JSONDecoder.
    ///
    /// Throws ``JSONError`` for malformed JSON and `DecodingError` for a document of the
    /// wrong shape.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        try decode(type, from: JSON.parse(bytes))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from json: JSON) throws -> T {
        try T(from: TreeDecoder(value: json, codingPath: []))
    }

    /// Encodes a value as a JSON document. Optionals that are nil are left out.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false, sortedKeys: Bool = false) throws -> [UInt8] {
        try tree(value).serialized(pretty: pretty, sortedKeys: sortedKeys)
    }

    /// Encodes a value as a ``JSON`` tree.
    public static func tree<T: Encodable>(_ value: T) throws -> JSON {
        let encoder = TreeEncoder(codingPath: [])
        try value.encode(to: encoder)
        return encoder.result ?? .null
    }
}

// MARK: Decoding

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?

    init(stringValue: String) {
        self.stringValue = stringValue
    }

    init(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

private func mismatch<T>(_ type: T.Type, _ value: JSON, _ path: [any CodingKey]) -> DecodingError {
    .typeMismatch(type, .init(codingPath: path, debugDescription: "expected \(type), found \(value.typeName)"))
}

private func decodePrimitive<T: Decodable>(_ type: T.Type, _ value: JSON, _ path: [any CodingKey]) throws -> T? {
    switch type {
    case is Bool.Type:
        guard case .bool(let b) = value else { throw mismatch(type, value, path) }
        return b as? T
    case is String.Type:
        guard case .string(let s) = value else { throw mismatch(type, value, path) }
        return s as? T
    case is Double.Type, is Float.Type:
        guard case .number(let n) = value, let d = Double(n) else { throw mismatch(type, value, path) }
        // 1e400 parses (the number's text is kept) but is no Double: never hand out an infinity.
        guard d.isFinite, type != Float.self || Float(d).isFinite else {
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(n) does not fit \(type)"))
        }
        return (type == Float.self ? Float(d) as Any : d as Any) as? T
    case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
        is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type:
        guard case .number(let n) = value else { throw mismatch(type, value, path) }
        // Above Int64.max only UInt64/UInt can hold the value: read it exactly, not via Double.
        if type == UInt64.self || type == UInt.self, Int64(n) == nil, let big = UInt64(n) {
            return (type == UInt.self ? UInt(exactly: big) as Any? : big as Any?) as? T
        }
        let integer: Int64? = Int64(n) ?? Double(n).flatMap { $0 == $0.rounded() && abs($0) < 9.2e18 ? Int64($0) : nil }
        guard let integer else { throw mismatch(type, value, path) }
        let converted: Any? =
            switch type {
            case is Int.Type: Int(exactly: integer)
            case is Int8.Type: Int8(exactly: integer)
            case is Int16.Type: Int16(exactly: integer)
            case is Int32.Type: Int32(exactly: integer)
            case is Int64.Type: integer
            case is UInt.Type: UInt(exactly: integer)
            case is UInt8.Type: UInt8(exactly: integer)
            case is UInt16.Type: UInt16(exactly: integer)
            case is UInt32.Type: UInt32(exactly: integer)
            default: UInt64(exactly: integer)
            }
        guard let result = converted as? T else {
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(n) does not fit \(type)"))
        }
        return result
    default:
        return nil
    }
}

struct TreeDecoder: Decoder {
    let value: JSON
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw mismatch([String: JSON].self, value, codingPath) }
        var dictionary: [String: JSON] = [:]
        for (key, member) in members { dictionary[key] = member }
        return KeyedDecodingContainer(Keyed<Key>(members: dictionary, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw mismatch([JSON].self, value, codingPath) }
        return Unkeyed(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        Single(value: value, codingPath: codingPath)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ value: JSON, _ path: [any CodingKey]) throws -> T {
        if let primitive = try decodePrimitive(type, value, path) { return primitive }
        return try T(from: TreeDecoder(value: value, codingPath: path))
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let members: [String: JSON]
        let codingPath: [any CodingKey]
        var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

        func member(_ key: Key) throws -> JSON {
            guard let value = members[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing \"\(key.stringValue)\""))
            }
            return value
        }

        func decodeNil(forKey key: Key) throws -> Bool {
            guard let value = members[key.stringValue] else { return true }
            return value == .null
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try TreeDecoder.decode(type, member(key), codingPath + [key])
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            try TreeDecoder(value: member(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try TreeDecoder(value: member(key), codingPath: codingPath + [key]).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder {
            TreeDecoder(value: members["super"] ?? .null, codingPath: codingPath)
        }

        func superDecoder(forKey key: Key) throws -> any Decoder {
            TreeDecoder(value: members[key.stringValue] ?? .null, codingPath: codingPath + [key])
        }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let items: [JSON]
        let codingPath: [any CodingKey]
        var currentIndex = 0
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        mutating func next() throws -> (JSON, [any CodingKey]) {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(JSON.self, .init(codingPath: codingPath, debugDescription: "array ended"))
            }
            defer { currentIndex += 1 }
            return (items[currentIndex], codingPath + [AnyKey(intValue: currentIndex)])
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd else { return false }
            if items[currentIndex] == .null {
                currentIndex += 1
                return true
            }
            return false
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (value, path) = try next()
            return try TreeDecoder.decode(type, value, path)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            let (value, path) = try next()
            return try TreeDecoder(value: value, codingPath: path).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            let (value, path) = try next()
            return try TreeDecoder(value: value, codingPath: path).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder {
            let (value, path) = try next()
            return TreeDecoder(value: value, codingPath: path)
        }
    }

    struct Single: SingleValueDecodingContainer {
        let value: JSON
        let codingPath: [any CodingKey]

        func decodeNil() -> Bool { value == .null }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try TreeDecoder.decode(type, value, codingPath)
        }
    }
}

// MARK: Encoding

/// Where an encoder's result lands: a reference, so nested containers can fill it in.
final class EncodedValue {
    var value: JSON?
    var members: [(String, EncodedValue)]?
    var items: [EncodedValue]?

    var json: JSON {
        if let members { return .object(members.map { ($0.0, $0.1.json) }) }
        if let items { return .array(items.map(\.json)) }
        return value ?? .null
    }
}

final class TreeEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    let root = EncodedValue()

    /// The encoded tree; nil when nothing was encoded.
    var result: JSON? { root.value == nil && root.members == nil && root.items == nil ? nil : root.json }

    init(codingPath: [any CodingKey]) {
        self.codingPath = codingPath
    }

    init(codingPath: [any CodingKey], into target: EncodedValue) {
        self.codingPath = codingPath
        self.targetOverride = target
    }

    private var targetOverride: EncodedValue?
    var target: EncodedValue { targetOverride ?? root }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if target.members == nil { target.members = [] }
        return KeyedEncodingContainer(Keyed<Key>(target: target, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if target.items == nil { target.items = [] }
        return Unkeyed(target: target, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        Single(target: target, codingPath: codingPath)
    }

    static func encode<T: Encodable>(_ value: T, into target: EncodedValue, path: [any CodingKey]) throws {
        switch value {
        case let v as Bool: target.value = .bool(v)
        case let v as String: target.value = .string(v)
        case let v as Int: target.value = .number(String(v))
        case let v as Int8: target.value = .number(String(v))
        case let v as Int16: target.value = .number(String(v))
        case let v as Int32: target.value = .number(String(v))
        case let v as Int64: target.value = .number(String(v))
        case let v as UInt: target.value = .number(String(v))
        case let v as UInt8: target.value = .number(String(v))
        case let v as UInt16: target.value = .number(String(v))
        case let v as UInt32: target.value = .number(String(v))
        case let v as UInt64: target.value = .number(String(v))
        case let v as Double:
            guard v.isFinite else {
                throw EncodingError.invalidValue(v, .init(codingPath: path, debugDescription: "JSON has no \(v)"))
            }
            target.value = .number(v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v))
        case let v as Float:
            try encode(Double(v), into: target, path: path)
        case let v as JSON:
            target.value = v
        default:
            try value.encode(to: TreeEncoder(codingPath: path, into: target))
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let target: EncodedValue
        let codingPath: [any CodingKey]

        func slot(_ key: Key) -> EncodedValue {
            let child = EncodedValue()
            target.members?.removeAll { $0.0 == key.stringValue }
            target.members?.append((key.stringValue, child))
            return child
        }

        mutating func encodeNil(forKey key: Key) throws { slot(key).value = .null }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try TreeEncoder.encode(value, into: slot(key), path: codingPath + [key])
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
            -> KeyedEncodingContainer<NestedKey>
        {
            TreeEncoder(codingPath: codingPath + [key], into: slot(key)).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            TreeEncoder(codingPath: codingPath + [key], into: slot(key)).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder {
            let child = EncodedValue()
            target.members?.removeAll { $0.0 == "super" }
            target.members?.append(("super", child))
            return TreeEncoder(codingPath: codingPath, into: child)
        }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            TreeEncoder(codingPath: codingPath + [key], into: slot(key))
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let target: EncodedValue
        let codingPath: [any CodingKey]
        var count: Int { target.items?.count ?? 0 }

        func slot() -> EncodedValue {
            let child = EncodedValue()
            target.items?.append(child)
            return child
        }

        mutating func encodeNil() throws { slot().value = .null }

        mutating func encode<T: Encodable>(_ value: T) throws {
            try TreeEncoder.encode(value, into: slot(), path: codingPath + [AnyKey(intValue: count)])
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            TreeEncoder(codingPath: codingPath, into: slot()).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            TreeEncoder(codingPath: codingPath, into: slot()).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder {
            TreeEncoder(codingPath: codingPath, into: slot())
        }
    }

    struct Single: SingleValueEncodingContainer {
        let target: EncodedValue
        let codingPath: [any CodingKey]

        mutating func encodeNil() throws { target.value = .null }

        mutating func encode<T: Encodable>(_ value: T) throws {
            try TreeEncoder.encode(value, into: target, path: codingPath)
        }
    }
}

extension JSON: Codable {
    public init(from decoder: any Decoder) throws {
        if let tree = decoder as? TreeDecoder {
            self = tree.value
            return
        }
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "JSON decodes only with JSONCoder"))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self)
    }
}
