/// The heartbeat a satellite sends to `POST /satellites/sync`, with Basic auth of its
/// registry credentials.
///
/// Field names and types follow Harbor Satellite's `StatusReportParams`
/// (internal/satellite/state/report.go) and Ground Control's `SatelliteStatusParams`.
/// Decoding is lenient: a missing field takes its zero value, as Go's decoder does, so
/// heartbeats of either agent are accepted.
public struct Heartbeat: Codable, Sendable, Equatable {
    public var name: String
    /// A short human summary of the last pass and anything abnormal.
    public var activity: String
    /// `@every 00h00m30s`.
    public var stateReportInterval: String
    /// Digest of the satellite-state artifact last applied (`sha256:…`).
    public var latestStateDigest: String
    /// Digest of the config-state artifact last applied.
    public var latestConfigDigest: String
    public var memoryUsedBytes: UInt64
    public var storageUsedBytes: UInt64
    public var cpuPercent: Double
    /// RFC 3339 time the satellite made this report.
    public var requestCreatedTime: String
    public var lastSyncDurationMs: Int64
    public var imageCount: Int
    public var cachedImages: [CachedImage]

    public init(
        name: String, activity: String = "", stateReportInterval: String = "", latestStateDigest: String = "",
        latestConfigDigest: String = "", memoryUsedBytes: UInt64 = 0, storageUsedBytes: UInt64 = 0,
        cpuPercent: Double = 0, requestCreatedTime: String = "", lastSyncDurationMs: Int64 = 0,
        imageCount: Int = 0, cachedImages: [CachedImage] = []
    ) {
        self.name = name
        self.activity = activity
        self.stateReportInterval = stateReportInterval
        self.latestStateDigest = latestStateDigest
        self.latestConfigDigest = latestConfigDigest
        self.memoryUsedBytes = memoryUsedBytes
        self.storageUsedBytes = storageUsedBytes
        self.cpuPercent = cpuPercent
        self.requestCreatedTime = requestCreatedTime
        self.lastSyncDurationMs = lastSyncDurationMs
        self.imageCount = imageCount
        self.cachedImages = cachedImages
    }

    enum CodingKeys: String, CodingKey {
        case name, activity
        case stateReportInterval = "state_report_interval"
        case latestStateDigest = "latest_state_digest"
        case latestConfigDigest = "latest_config_digest"
        case memoryUsedBytes = "memory_used_bytes"
        case storageUsedBytes = "storage_used_bytes"
        case cpuPercent = "cpu_percent"
        case requestCreatedTime = "request_created_time"
        case lastSyncDurationMs = "last_sync_duration_ms"
        case imageCount = "image_count"
        case cachedImages = "cached_images"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        activity = try c.decodeIfPresent(String.self, forKey: .activity) ?? ""
        stateReportInterval = try c.decodeIfPresent(String.self, forKey: .stateReportInterval) ?? ""
        latestStateDigest = try c.decodeIfPresent(String.self, forKey: .latestStateDigest) ?? ""
        latestConfigDigest = try c.decodeIfPresent(String.self, forKey: .latestConfigDigest) ?? ""
        memoryUsedBytes = try c.decodeIfPresent(UInt64.self, forKey: .memoryUsedBytes) ?? 0
        storageUsedBytes = try c.decodeIfPresent(UInt64.self, forKey: .storageUsedBytes) ?? 0
        cpuPercent = try c.decodeIfPresent(Double.self, forKey: .cpuPercent) ?? 0
        requestCreatedTime = try c.decodeIfPresent(String.self, forKey: .requestCreatedTime) ?? ""
        lastSyncDurationMs = try c.decodeIfPresent(Int64.self, forKey: .lastSyncDurationMs) ?? 0
        imageCount = try c.decodeIfPresent(Int.self, forKey: .imageCount) ?? 0
        cachedImages = try c.decodeIfPresent([CachedImage].self, forKey: .cachedImages) ?? []
    }

    /// Every field is written, empty ones included, as Harbor Satellite's agent does.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(activity, forKey: .activity)
        try c.encode(stateReportInterval, forKey: .stateReportInterval)
        try c.encode(latestStateDigest, forKey: .latestStateDigest)
        try c.encode(latestConfigDigest, forKey: .latestConfigDigest)
        try c.encode(memoryUsedBytes, forKey: .memoryUsedBytes)
        try c.encode(storageUsedBytes, forKey: .storageUsedBytes)
        try c.encode(cpuPercent, forKey: .cpuPercent)
        try c.encode(requestCreatedTime, forKey: .requestCreatedTime)
        try c.encode(lastSyncDurationMs, forKey: .lastSyncDurationMs)
        try c.encode(imageCount, forKey: .imageCount)
        try c.encode(cachedImages, forKey: .cachedImages)
    }
}

/// One image the satellite holds, as the heartbeat lists it.
public struct CachedImage: Codable, Sendable, Equatable, Hashable {
    /// `repository:tag`, `repository@digest` or `repository:tag@digest`.
    public var reference: String
    public var sizeBytes: Int64

    public init(reference: String, sizeBytes: Int64) {
        self.reference = reference
        self.sizeBytes = sizeBytes
    }

    enum CodingKeys: String, CodingKey {
        case reference
        case sizeBytes = "size_bytes"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        reference = try c.decodeIfPresent(String.self, forKey: .reference) ?? ""
        sizeBytes = try c.decodeIfPresent(Int64.self, forKey: .sizeBytes) ?? 0
    }
}

/// Ground Control's answer to a heartbeat: `{"events": [...], "actions": [...]}`.
///
/// An empty body (Harbor Satellite's Ground Control answers 200 with none) decodes as no
/// events and no actions.
public struct HeartbeatReply: Codable, Sendable, Equatable {
    public var events: [Instruction]
    public var actions: [Instruction]

    public init(events: [Instruction] = [], actions: [Instruction] = []) {
        self.events = events
        self.actions = actions
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        events = try c.decodeIfPresent([Instruction].self, forKey: .events) ?? []
        actions = try c.decodeIfPresent([Instruction].self, forKey: .actions) ?? []
    }

    /// Whether Ground Control asks for `POST /satellites/refresh`, in either list.
    public var asksForCredentialRefresh: Bool {
        (events + actions).contains { $0.type == Instruction.refreshCredentials }
    }

    /// One entry of `events` or `actions`: a bare string (`"refresh_credentials"`) or an
    /// object naming its type in `type`, `action` or `name`, with an optional message.
    /// Both spellings decode; it encodes as an object with `type`.
    public struct Instruction: Codable, Sendable, Equatable {
        public static let refreshCredentials = "refresh_credentials"

        public var type: String
        public var message: String?

        public init(type: String, message: String? = nil) {
            self.type = type
            self.message = message
        }

        enum CodingKeys: String, CodingKey {
            case type, action, name, message
        }

        public init(from decoder: any Decoder) throws {
            if let text = try? decoder.singleValueContainer().decode(String.self) {
                self.type = text
                self.message = nil
                return
            }
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let type =
                try c.decodeIfPresent(String.self, forKey: .type) ?? c.decodeIfPresent(String.self, forKey: .action)
                ?? c.decodeIfPresent(String.self, forKey: .name)
            guard let type else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "an event or action names no type"))
            }
            self.type = type
            self.message = try c.decodeIfPresent(String.self, forKey: .message)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(type, forKey: .type)
            try c.encodeIfPresent(message, forKey: .message)
        }
    }
}
