/// Percent-encoding (RFC 3986) without Foundation: query values sent upstream, names in
/// links, and what clients send in paths and forms.
public enum PercentEncoding {
    /// Every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`: safe in a query
    /// value and in a path segment.
    public static func encode(_ text: some StringProtocol) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case 0x30...0x39, 0x41...0x5a, 0x61...0x7a, 0x2d, 0x2e, 0x5f, 0x7e:
                out.append(Character(Unicode.Scalar(byte)))
            default:
                out += "%" + Digest.hexByte(byte).uppercased()
            }
        }
        return out
    }

    /// Decodes `%XX` escapes (and `+` as a space when `plusIsSpace`, as HTML forms send it);
    /// nil for a malformed escape or invalid UTF-8.
    public static func decode(_ text: some StringProtocol, plusIsSpace: Bool = false) -> String? {
        guard text.contains("%") || (plusIsSpace && text.contains("+")) else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == 0x25 {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(plusIsSpace && byte == 0x2b ? 0x20 : byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }
}
