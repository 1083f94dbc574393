import OCICore
import SatelliteConfig

extension ListenAddress {
    /// host:port a process on this machine uses to reach the listener: a wildcard listen
    /// host (0.0.0.0, ::) becomes 127.0.0.1. This is `SATELLITE_REGISTRY` and the mirror
    /// address that `runtime-config` writes.
    public var localAddress: String {
        switch host {
        case "0.0.0.0", "::", "": "127.0.0.1:\(port)"
        default: description
        }
    }

    /// Whether ``localAddress`` is a loopback address (127.0.0.0/8, ::1, localhost), which
    /// Docker trusts over plain HTTP without an `insecure-registries` entry.
    public var localAddressIsLoopback: Bool {
        host.hasPrefix("127.") || host == "::1" || host == "localhost" || host == "0.0.0.0" || host == "::"
    }
}
