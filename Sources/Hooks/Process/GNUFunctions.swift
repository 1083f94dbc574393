#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// libc functions that Swift's Glibc module hides (they are declared only under
/// _GNU_SOURCE), looked up at run time. Each is nil where the C library lacks it, e.g. in a
/// fully static binary; callers then fall back to the portable way.
enum GNUFunctions {
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    typealias AddChdir = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutableRawPointer?, Int32) -> Int32

    nonisolated(unsafe) private static let handle = dlopen(nil, RTLD_NOW)

    private static func lookup<T>(_ name: String, as type: T.Type) -> T? {
        guard let handle, let symbol = dlsym(handle, name) else { return nil }
        return unsafeBitCast(symbol, to: type)
    }

    /// pipe2(2) (glibc 2.9, musl).
    static let pipe2 = lookup("pipe2", as: Pipe2.self)
    /// posix_spawn_file_actions_addchdir_np (glibc 2.29, musl 1.1.24).
    static let addChdir = lookup("posix_spawn_file_actions_addchdir_np", as: AddChdir.self)
    /// posix_spawn_file_actions_addclosefrom_np (glibc 2.34).
    static let addCloseFrom = lookup("posix_spawn_file_actions_addclosefrom_np", as: AddCloseFrom.self)
}
