import OCICore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One finished run of one hook, as `status` shows it.
public struct HookRun: Sendable, Equatable, Codable {
    public var event: HookEvent
    /// Position of the hook in the config's `hooks` array.
    public var hookIndex: Int
    public var command: String
    /// 1 for the first try; more when the process died while an earlier try ran.
    public var attempt: Int
    /// Nanoseconds since the Unix epoch.
    public var started: Int64
    /// Nanoseconds.
    public var duration: Int64
    public var outcome: HookProcess.Outcome
    /// The end of what the hook wrote to stdout and stderr.
    public var output: String
    /// Everything the hook wrote, including what `output` no longer holds.
    public var outputBytes: Int64

    public var succeeded: Bool { outcome.succeeded }
}

extension HookProcess.Outcome: Codable {
    private enum CodingKeys: String, CodingKey {
        case status, code, detail
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let status = try container.decode(String.self, forKey: .status)
        let code = try container.decodeIfPresent(Int32.self, forKey: .code) ?? 0
        switch status {
        case "exited": self = .exited(code)
        case "signaled": self = .signaled(code)
        case "timed-out": self = .timedOut(signal: code)
        case "cancelled": self = .cancelled
        case "failed-to-start": self = .failedToStart(try container.decodeIfPresent(String.self, forKey: .detail) ?? "")
        case "abandoned": self = .abandoned(attempts: Int(code))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .status, in: container, debugDescription: "unknown hook status \"\(status)\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .exited(let code):
            try container.encode("exited", forKey: .status)
            try container.encode(code, forKey: .code)
        case .signaled(let signal):
            try container.encode("signaled", forKey: .status)
            try container.encode(signal, forKey: .code)
        case .timedOut(let signal):
            try container.encode("timed-out", forKey: .status)
            try container.encode(signal, forKey: .code)
        case .cancelled:
            try container.encode("cancelled", forKey: .status)
        case .failedToStart(let reason):
            try container.encode("failed-to-start", forKey: .status)
            try container.encode(reason, forKey: .detail)
        case .abandoned(let attempts):
            try container.encode("abandoned", forKey: .status)
            try container.encode(Int32(clamping: attempts), forKey: .code)
        }
    }
}
