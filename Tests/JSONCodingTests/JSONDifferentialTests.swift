// Differential check of JSONCoding against Foundation's JSONSerialization (the parser of
// swift-foundation), over seeded random documents and mutations of them: both must agree
// on accept or reject, and on the values of what they accept. Test targets may use
// Foundation; the edge binary does not.
import Foundation
import JSONCoding
import Testing

@Suite struct JSONDifferentialTests {
    /// A small deterministic generator (SplitMix64), so a failure names a reproducible seed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func randomDocument(_ rng: inout SplitMix, depth: Int = 0) -> String {
        let pick = Int(rng.next() % (depth > 4 ? 6 : 8))
        switch pick {
        case 0: return "null"
        case 1: return rng.next() % 2 == 0 ? "true" : "false"
        case 2:
            let integers = ["0", "-0", "7", "-12", "9223372036854775807", "-9223372036854775808", "18446744073709551615", "123456789012"]
            return integers[Int(rng.next() % UInt64(integers.count))]
        case 3:
            let reals = ["0.5", "-1.25e3", "1E-7", "3.0", "2.5e+10", "-0.0", "1e308", "6.02e23"]
            return reals[Int(rng.next() % UInt64(reals.count))]
        case 4, 5:
            let pieces = ["a", "é", "🚀", "\\n", "\\\"", "\\\\", "\\u0041", "\\ud83d\\ude80", " ", "\\t", "z9", "\\/"]
            let count = Int(rng.next() % 6)
            return "\"" + (0..<count).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined() + "\""
        case 6:
            let count = Int(rng.next() % 4)
            return "[" + (0..<count).map { _ in randomDocument(&rng, depth: depth + 1) }.joined(separator: ",") + "]"
        default:
            let count = Int(rng.next() % 4)
            // Distinct keys: Foundation and JSONCoding both keep the last of duplicates, but
            // Foundation's dictionary order is not the document's, so distinct keys keep the
            // value comparison simple.
            return "{" + (0..<count).map { i in "\"k\(i)\":" + randomDocument(&rng, depth: depth + 1) }.joined(separator: ",")
                + "}"
        }
    }

    /// One byte changed, removed or inserted: mostly invalid documents, some still valid.
    static func mutate(_ text: String, _ rng: inout SplitMix) -> [UInt8] {
        var bytes = Array(text.utf8)
        let alphabet = Array("{}[]\",:0123456789-+.eEtrufalsn \\u\t\n".utf8) + [0x00, 0x1f, 0x7f, 0xc3, 0xa9, 0xff]
        let position = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
        switch rng.next() % 3 {
        case 0 where !bytes.isEmpty: bytes[position] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
        case 1 where !bytes.isEmpty: bytes.remove(at: position)
        default: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: position)
        }
        return bytes
    }

    /// A value both sides can be compared in: numbers as Double (JSONSerialization gives
    /// NSNumber), objects as sorted key/value pairs.
    indirect enum Canonical: Equatable {
        case null, bool(Bool), number(Double), string(String), array([Canonical]), object([String: Canonical])
    }

    static func canonical(_ json: JSON) -> Canonical {
        switch json {
        case .null: .null
        case .bool(let b): .bool(b)
        case .number(let text): .number(Double(text) ?? .nan)
        case .string(let s): .string(s)
        case .array(let items): .array(items.map(canonical))
        case .object(let members): .object(Dictionary(members.map { ($0.0, canonical($0.1)) }, uniquingKeysWith: { _, last in last }))
        }
    }

    static func canonical(_ any: Any) -> Canonical? {
        switch any {
        case is NSNull: return .null
        case let n as NSNumber:
            if String(cString: n.objCType) == "c" { return .bool(n.boolValue) }
            // NSNumber keeps large unsigned integers exactly; compare through their text.
            return .number(Double(n.stringValue) ?? n.doubleValue)
        case let s as String: return .string(s)
        case let a as [Any]:
            var items: [Canonical] = []
            for item in a {
                guard let c = canonical(item) else { return nil }
                items.append(c)
            }
            return .array(items)
        case let d as [String: Any]:
            var members: [String: Canonical] = [:]
            for (k, v) in d {
                guard let c = canonical(v) else { return nil }
                members[k] = c
            }
            return .object(members)
        default: return nil
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func agreesWithFoundation(seed: UInt64) throws {
        var rng = SplitMix(state: seed)
        var accepted = 0
        var refused = 0
        var known = 0
        for round in 0..<1500 {
            let document = Self.randomDocument(&rng)
            let bytes: [UInt8] = round % 3 == 0 ? Array(document.utf8) : Self.mutate(document, &rng)
            let ours = try? JSON.parse(bytes)
            let theirs = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            let text = String(decoding: bytes, as: UTF8.self)
            if (ours != nil) != (theirs != nil), Self.isKnownDifference(bytes, ours: ours) {
                known += 1
                continue
            }
            #expect((ours != nil) == (theirs != nil), "seed \(seed) round \(round): verdicts differ on \(bytes) \(text)")
            if let ours, let theirs {
                accepted += 1
                #expect(Self.canonical(ours) == Self.canonical(theirs), "seed \(seed) round \(round): values differ on \(text)")
                // What we accept, we write back so that it reads the same.
                let again = try JSON.parse(ours.serialized())
                #expect(Self.canonical(again) == Self.canonical(ours), "seed \(seed) round \(round): round trip of \(text)")
            } else {
                refused += 1
            }
        }
        #expect(accepted > 300 && refused > 300, "the generator should give both kinds: \(accepted)/\(refused)")
        #expect(known < 100, "known differences should stay the exception: \(known)")
    }

    /// Where the two parsers differ on purpose (the i_ cases of JSONTestSuite, and
    /// Foundation's leniencies):
    /// - a number beyond Double's range (`1e400`): JSONCoding keeps the number's text and
    ///   accepts the document (decoding it into Double or an integer is refused, see
    ///   `outOfRangeNumbers`); Foundation refuses the document;
    /// - a trailing comma before `]` or `}`, and a NUL byte before the document: Foundation
    ///   accepts them, RFC 8259 does not, and neither does JSONCoding.
    static func isKnownDifference(_ bytes: [UInt8], ours: JSON?) -> Bool {
        if let ours { return hasNonFiniteNumber(ours) }
        if bytes.first == 0 { return true }
        let significant = bytes.filter { ![0x20, 0x09, 0x0a, 0x0d].contains($0) }
        return zip(significant, significant.dropFirst()).contains { $0 == UInt8(ascii: ",") && ($1 == UInt8(ascii: "]") || $1 == UInt8(ascii: "}")) }
    }

    static func hasNonFiniteNumber(_ json: JSON) -> Bool {
        switch json {
        case .number(let text): !(Double(text)?.isFinite ?? false)
        case .array(let items): items.contains(where: hasNonFiniteNumber)
        case .object(let members): members.contains { hasNonFiniteNumber($0.1) }
        default: false
        }
    }

    /// i_ cases: a number beyond Double's range parses (its text is kept) but does not
    /// decode into a number type; JSONCoding never hands out an infinity.
    @Test(arguments: ["1e400", "-1e400", "2.5e910"])
    func outOfRangeNumbers(text: String) throws {
        let bytes = Array(text.utf8)
        #expect(try JSON.parse(bytes) == .number(text))
        #expect(throws: DecodingError.self) { try JSONCoder.decode(Double.self, from: bytes) }
        #expect(throws: DecodingError.self) { try JSONCoder.decode(Int64.self, from: bytes) }
    }

    /// i_ case: a number below Double's precision reads as zero, as everywhere.
    @Test func underflowIsZero() throws {
        #expect(try JSONCoder.decode(Double.self, from: Array("1e-400".utf8)) == 0)
    }
}
