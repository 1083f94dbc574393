import Logging
import OCICore
import Synchronization
import Sync

/// `run`'s side of the WAN gate: feeds the registry's served bytes to the gate's LAN
/// accounting and lets the gate write its ledger when due, every few seconds, and says
/// when the WAN is closed so the loop waits instead of starting a pass.
final class WANAccountingLoop: Sendable {
    /// How often a closed WAN is looked at again (a moved clock or a new day is seen this fast).
    static let pollInterval: Int64 = 2_000_000_000

    let gate: WANGate
    private let served: @Sendable () -> Int64
    private let counted = Mutex<Int64>(0)
    private let lastReason = Mutex<String?>(nil)
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(gate: WANGate, served: @escaping @Sendable () -> Int64) {
        self.gate = gate
        self.served = served
        let loop = Task { [weak self] in
            while !Task.isCancelled {
                do { try await Task.sleep(nanoseconds: 5_000_000_000) } catch { return }
                self?.sample()
            }
        }
        task.withLock { $0 = loop }
    }

    /// Moves the registry's new served bytes into the LAN count.
    func sample() {
        let now = served()
        let delta = counted.withLock { last in
            defer { last = now }
            return now - last
        }
        gate.accounting.addLAN(delta)
        _ = gate.snapshot()
    }

    /// Nanoseconds to wait when `gate` (the current config's) lets no WAN byte move now;
    /// nil when a pass may start. Logs each new reason once.
    func closed(_ gate: WANGate, logger: Logger) -> Int64? {
        do {
            try gate.check()
            lastReason.withLock { $0 = nil }
            return nil
        } catch {
            let reason = (error as? SyncError)?.message ?? "\(error)"
            let changed = lastReason.withLock { last in
                defer { last = reason }
                return last != reason
            }
            if changed { logger.info("WAN closed: waiting", metadata: ["reason": "\(reason)"]) }
            return Self.pollInterval
        }
    }

    func stop() {
        task.withLock { $0 }?.cancel()
        sample()
        gate.flush()
    }
}
