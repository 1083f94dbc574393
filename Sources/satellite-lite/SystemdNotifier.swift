import CommandParsing
import ContentStore
import OCICore
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The systemd notify protocol (sd_notify), without libsystemd: datagrams to the unix socket
/// named by NOTIFY_SOCKET. `READY=1` once serving, `WATCHDOG=1` every half WATCHDOG_USEC,
/// `STOPPING=1` on the way out. Outside systemd every call does nothing.
enum SystemdNotifier {
    static func send(_ message: String) {
        guard let socketPath = getenvString("NOTIFY_SOCKET"), !socketPath.isEmpty else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(socketPath.utf8)
        // "@name" is an abstract socket: a leading NUL byte.
        if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in pathBytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count)
        let payload = Array(message.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
            }
        }
    }

    /// Half the watchdog interval systemd asked for, in nanoseconds; nil without a watchdog.
    static var watchdogInterval: Int64? {
        guard let text = getenvString("WATCHDOG_USEC"), let usec = Int64(text), usec > 0 else { return nil }
        if let pid = getenvString("WATCHDOG_PID"), let value = Int32(pid), value != getpid() { return nil }
        return usec * 1000 / 2
    }

    /// Sends READY=1 and keeps the watchdog fed until the task is cancelled, as long as
    /// `isAlive` answers true within half the ping interval: a stuck process stops feeding
    /// it, and systemd restarts the service (WatchdogSec). Without a watchdog, nil.
    static func ready(
        status: String, logger: Logger, isAlive: @escaping @Sendable (_ timeoutNanoseconds: Int64) async -> Bool
    ) -> Task<Void, Never>? {
        send("READY=1\nSTATUS=\(status)")
        guard let interval = watchdogInterval else { return nil }
        return Task.detached {
            while !Task.isCancelled {
                if await isAlive(interval / 2) {
                    send("WATCHDOG=1")
                } else if !Task.isCancelled {
                    logger.error("liveness check failed: the registry's event loops or I/O threads did not answer; the systemd watchdog is not fed")
                }
                try? await Task.sleep(nanoseconds: UInt64(interval))
            }
        }
    }
}
