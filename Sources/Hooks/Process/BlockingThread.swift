import OCICore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs blocking work (poll, waitpid) on a thread of its own, so that neither the NIO event
/// loops nor Swift's cooperative pool ever wait on a child process.
enum BlockingThread {
    /// Runs `body` on a new detached thread and returns its result.
    ///
    /// Throws ``HookProcess/SpawnError`` when no thread can be created.
    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let work = Work { continuation.resume(returning: body()) }
            let retained = Unmanaged.passRetained(work)
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            defer { pthread_attr_destroy(&attributes) }
            pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
            #if canImport(Glibc)
            var thread = pthread_t()
            #else
            var thread: pthread_t? = nil
            #endif
            let rc = pthread_create(
                &thread, &attributes,
                { raw in
                    guard let raw else { return nil }
                    Unmanaged<Work>.fromOpaque(raw).takeRetainedValue().body()
                    return nil
                }, retained.toOpaque())
            if rc != 0 {
                retained.release()
                continuation.resume(throwing: HookProcess.SpawnError(operation: "pthread_create", code: rc))
            }
        }
    }

    /// The closure handed to the new thread; the thread takes over the retain.
    private final class Work: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}
