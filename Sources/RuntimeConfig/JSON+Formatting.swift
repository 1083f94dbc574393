import OCICore
import JSONCoding

/// Editing a JSON file a person maintains (docker's daemon.json): members keep their order
/// and numbers their spelling, and the file keeps its indentation width.
extension JSON {
    /// Sets `key` of an object (in place if present, else appended).
    mutating func set(_ key: String, _ value: JSON) {
        guard case .object(var members) = self else { return }
        if let index = members.firstIndex(where: { $0.0 == key }) {
            members[index].1 = value
        } else {
            members.append((key, value))
        }
        self = .object(members)
    }

    /// Pretty text: one member or element per line, keys in order, `unit` per level.
    func formatted(unit: String = "  ") -> String {
        var output = ""
        write(to: &output, indent: "", unit: unit)
        return output + "\n"
    }

    /// The indentation a file uses per level (its first indented line), else two spaces.
    static func indentationUnit(of bytes: [UInt8]) -> String {
        guard let newline = bytes.firstIndex(of: 0x0a) else { return "  " }
        let indentation = bytes[(newline + 1)...].prefix { $0 == 0x20 || $0 == 0x09 }
        guard !indentation.isEmpty, indentation.count <= 8 else { return "  " }
        return String(decoding: indentation, as: UTF8.self)
    }

    private func write(to output: inout String, indent: String, unit: String) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .number(let text): output += text
        case .string(let text): output += JSON.quoted(text)
        case .array(let elements):
            guard !elements.isEmpty else { return output += "[]" }
            output += "[\n"
            for (index, element) in elements.enumerated() {
                output += indent + unit
                element.write(to: &output, indent: indent + unit, unit: unit)
                output += index < elements.count - 1 ? ",\n" : "\n"
            }
            output += indent + "]"
        case .object(let members):
            guard !members.isEmpty else { return output += "{}" }
            output += "{\n"
            for (index, member) in members.enumerated() {
                output += indent + unit + JSON.quoted(member.0) + ": "
                member.1.write(to: &output, indent: indent + unit, unit: unit)
                output += index < members.count - 1 ? ",\n" : "\n"
            }
            output += indent + "}"
        }
    }
}
