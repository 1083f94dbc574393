import Synchronization

/// Bytes this process moved over the site's two kinds of link since it started: the WAN
/// (from the upstream and its mirrors, counted by ``WANGate``) and the LAN (served to the
/// site's clients and peers). Anything that moves LAN bytes feeds ``addLAN(_:)``; WAN bytes
/// only enter through the gate, so they are always under the windows and the budget.
public final class LinkAccounting: Sendable {
    private let wan = Atomic<Int64>(0)
    private let lan = Atomic<Int64>(0)

    public init() {}

    public var wanBytes: Int64 { wan.load(ordering: .relaxed) }
    public var lanBytes: Int64 { lan.load(ordering: .relaxed) }

    /// Counts bytes the site's LAN carried (a registry client or a peer was served).
    public func addLAN(_ bytes: Int64) {
        if bytes > 0 { lan.wrappingAdd(bytes, ordering: .relaxed) }
    }

    func addWAN(_ bytes: Int64) {
        if bytes > 0 { wan.wrappingAdd(bytes, ordering: .relaxed) }
    }
}
