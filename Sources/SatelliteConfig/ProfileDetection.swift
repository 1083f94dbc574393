import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Picks the hardware profile for `"profile": "auto"` from what the machine says about
/// itself: the device-tree model, `uname -m` and MemTotal.
public enum ProfileDetection {
    public struct Facts: Sendable, Equatable {
        public var machine: String
        public var model: String?
        public var memory: Int64

        public init(machine: String, model: String?, memory: Int64) {
            self.machine = machine
            self.model = model
            self.memory = memory
        }
    }

    /// Reads the running machine's facts.
    public static func currentFacts() -> Facts {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        var model: String?
        for path in ["/proc/device-tree/model", "/sys/firmware/devicetree/base/model"] {
            if let bytes = try? PosixFile.readAll(path: path, limit: 4096) {
                model = String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
                break
            }
        }
        var memory: Int64 = 0
        if let bytes = try? PosixFile.readAll(path: "/proc/meminfo", limit: 1 << 16) {
            let text = String(decoding: bytes, as: UTF8.self)
            for line in text.split(separator: "\n") where line.hasPrefix("MemTotal:") {
                let kib = line.split(separator: " ").dropFirst().first.flatMap { Int64($0) } ?? 0
                memory = kib * 1024
            }
        }
        return Facts(machine: machine, model: model, memory: memory)
    }

    public static func detect() -> (profile: HardwareProfile, reason: String) {
        detect(facts: currentFacts(), profiles: HardwareProfile.builtIn)
    }

    /// Scores every profile: a device-tree model match wins, then the machine type within the
    /// memory bounds; the most specific match (narrowest memory range) breaks ties.
    public static func detect(facts: Facts, profiles: [HardwareProfile]) -> (profile: HardwareProfile, reason: String) {
        func fitsMemory(_ p: HardwareProfile) -> Bool {
            (p.detect.minMemory == 0 || facts.memory >= p.detect.minMemory)
                && (p.detect.maxMemory == 0 || facts.memory <= p.detect.maxMemory)
        }
        let seen =
            "uname -m \(facts.machine), "
            + (facts.model.map { "model \"\($0)\", " } ?? "no device-tree model, ")
            + "memory \(Units.formatSize(facts.memory))"
        let byArch = profiles.filter { $0.detect.machines.contains(facts.machine) && fitsMemory($0) }
        if let model = facts.model {
            let byModel = byArch.filter { p in p.detect.models.contains { model.containsText($0) } }
            if let best = byModel.min(by: { span($0) < span($1) }) {
                return (best, "auto: model matches (\(seen))")
            }
        }
        if let best = byArch.filter({ $0.detect.models.isEmpty }).min(by: { span($0) < span($1) })
            ?? byArch.min(by: { span($0) < span($1) })
        {
            return (best, "auto: machine type matches (\(seen))")
        }
        let fallback = profiles.first { $0.name == "generic-amd64" } ?? profiles[0]
        return (fallback, "auto: no profile fits (\(seen)); using \(fallback.name)")
    }

    private static func span(_ p: HardwareProfile) -> Int64 {
        (p.detect.maxMemory == 0 ? Int64.max / 2 : p.detect.maxMemory) - p.detect.minMemory
    }
}
