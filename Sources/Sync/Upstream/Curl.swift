import CCurl
import NIOPosix
import CTLSVerify
import Synchronization
import ContentStore
import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One HTTP exchange over libcurl (an easy handle), performed synchronously on the calling
/// thread: callers run it on the sync engine's thread pool, never on an event loop or the
/// cooperative pool.
///
/// Body bytes go to `onBody` as they arrive (at most curl's buffer at a time), so nothing is
/// held whole in memory. `onHeaders` sees the final response's status and headers before the
/// first body byte and may refuse the body (e.g. a 206 that starts at the wrong offset).
final class CurlTransfer {
    struct Options {
        var method = "GET"
        var headers: [String] = []
        var connectTimeout: Int64 = 15_000_000_000
        /// Abort when no byte moves in either direction for this long (nanoseconds),
        /// including while waiting for the response.
        var stallTimeout: Int64 = 60_000_000_000
        var caFile: String?
        var insecure = false
        var followRedirects = true
        /// Size of curl's receive buffer (the profile's I/O buffer).
        var bufferSize = 65536
        /// A small request body (JSON to Ground Control), copied by curl.
        var body: [UInt8]?
    }

    struct Response {
        var status: Int
        var headers: [(String, String)]

        func header(_ name: String) -> String? {
            let lower = name.lowercased()
            return headers.last { $0.0 == lower }?.1
        }
    }

    enum HeaderDecision {
        case accept
        /// Stop the transfer without reading the body.
        case reject
    }

    /// What went wrong in a transfer: curl's own error, or a refusal by a callback.
    struct Failure: Error, CustomStringConvertible {
        var code: CURLcode
        var message: String
        var description: String { message }

        /// A link problem worth retrying (not a TLS or configuration problem).
        var isTransient: Bool {
            switch code {
            case CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_RECV_ERROR, CURLE_SEND_ERROR,
                CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING, CURLE_COULDNT_RESOLVE_HOST, CURLE_HTTP2, CURLE_HTTP2_STREAM:
                true
            default:
                false
            }
        }
    }

    private final class Context {
        var headerLines: [(String, String)] = []
        var status = 0
        var headersDone = false
        var decision = HeaderDecision.accept
        /// onHeaders was asked (at the first body byte, or after an empty body).
        var decided = false
        var onHeaders: (Response) -> HeaderDecision
        var onBody: (UnsafeRawBufferPointer) throws -> Void
        var bodyError: (any Error)?
        let cancelled: CancelFlag
        /// Stall detection: bytes moved so far, and when that last changed.
        let stallTimeout: Int64
        var bytesMoved: Int64 = 0
        var lastMove = MonotonicClock.now()
        var stalled = false

        init(
            onHeaders: @escaping (Response) -> HeaderDecision, onBody: @escaping (UnsafeRawBufferPointer) throws -> Void,
            cancelled: CancelFlag, stallTimeout: Int64
        ) {
            self.onHeaders = onHeaders
            self.onBody = onBody
            self.cancelled = cancelled
            self.stallTimeout = stallTimeout
        }

        /// Called by curl's progress callback (at least once a second): true to abort.
        func shouldAbort(bytes: Int64) -> Bool {
            if cancelled.isSet { return true }
            let now = MonotonicClock.now()
            if bytes != bytesMoved {
                bytesMoved = bytes
                lastMove = now
            } else if now - lastMove > stallTimeout {
                stalled = true
                return true
            }
            return false
        }
    }

    static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    /// An idle easy handle. A handle is used by one thread at a time; kept between requests it
    /// keeps its connections (and TLS sessions) open, so a pass does not pay a TCP and TLS
    /// handshake per manifest and per blob.
    struct Handle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    static let idleHandles = Mutex<[Handle]>([])
    /// Idle handles kept (each holds at most a few connections).
    static let maxIdleHandles = 8

    static func takeHandle() -> UnsafeMutableRawPointer? {
        if let handle = idleHandles.withLock({ $0.popLast() }) { return handle.pointer }
        return curl_easy_init()
    }

    static func returnHandle(_ pointer: UnsafeMutableRawPointer) {
        curl_easy_reset(pointer)
        let kept = idleHandles.withLock { handles -> Bool in
            guard handles.count < maxIdleHandles else { return false }
            handles.append(Handle(pointer: pointer))
            return true
        }
        if !kept { curl_easy_cleanup(pointer) }
    }

    /// Performs one request. Returns the final response (after redirects).
    ///
    /// Throws ``Failure`` for connection, timeout and TLS errors, and rethrows what `onBody`
    /// threw (e.g. a disk error).
    static func perform(
        url: String, options: Options, cancelled: CancelFlag,
        onHeaders: @escaping (Response) -> HeaderDecision = { _ in .accept },
        onBody: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) throws -> Response {
        _ = globalInit
        guard let handle = takeHandle() else {
            throw Failure(code: CURLE_FAILED_INIT, message: "curl_easy_init failed")
        }
        defer { returnHandle(handle) }
        let context = Context(onHeaders: onHeaders, onBody: onBody, cancelled: cancelled, stallTimeout: options.stallTimeout)
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        // Scratch space for the iPAddress subjectAltName check of each TLS connection of
        // this transfer (curl's mbedTLS 2.x backend only; see ctls_verify.h).
        let peer = UnsafeMutablePointer<ctls_peer>.allocate(capacity: 1)
        peer.initialize(to: ctls_peer())
        defer { peer.deallocate() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        for header in options.headers {
            headerList = curl_slist_append(headerList, header)
        }
        defer { curl_slist_free_all(headerList) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            _ = ccurl_setopt_string(handle, CURLOPT_URL, url)
            _ = ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            _ = ccurl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
            _ = ccurl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
            _ = ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, options.followRedirects ? 1 : 0)
            _ = ccurl_setopt_long(handle, CURLOPT_MAXREDIRS, 5)
            _ = ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(options.connectTimeout / 1_000_000))
            // Stalls are detected in the progress callback below, to the second: curl's
            // LOW_SPEED_TIME averages the speed and fired up to 6 s late.
            _ = ccurl_setopt_long(handle, CURLOPT_BUFFERSIZE, min(max(options.bufferSize, 16384), 512 * 1024))
            _ = ccurl_setopt_string(handle, CURLOPT_USERAGENT, "satellite-lite")
            _ = ccurl_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress)
            if options.method == "HEAD" {
                _ = ccurl_setopt_long(handle, CURLOPT_NOBODY, 1)
            } else if options.method != "GET" {
                _ = ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, options.method)
            }
            if let body = options.body {
                _ = ccurl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                _ = body.withUnsafeBytes { ccurl_setopt_ptr(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress)) }
            }
            if let caFile = options.caFile { _ = ccurl_setopt_string(handle, CURLOPT_CAINFO, caFile) }
            if !options.insecure { _ = ctls_enable_ip_san_check(handle, peer) }
            if options.insecure {
                _ = ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 0)
                _ = ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 0)
            }
            _ = ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
            let opaque = unmanaged.toOpaque()
            _ = ccurl_setopt_ptr(handle, CURLOPT_HEADERDATA, opaque)
            _ = ccurl_setopt_header_function(handle) { data, size, count, user in
                guard let user else { return 0 }
                let context = Unmanaged<Context>.fromOpaque(user).takeUnretainedValue()
                let length = size * count
                let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
                    .trimmed(leading: false)
                if line.hasPrefix("HTTP/") {
                    // A new response (after a redirect or a 100 Continue): start over.
                    context.headerLines = []
                    context.headersDone = false
                    let parts = line.split(separator: " ")
                    context.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
                } else if line.isEmpty {
                    context.headersDone = true
                } else if let colon = line.firstIndex(of: ":") {
                    let name = line[..<colon].lowercased()
                    let value = line[line.index(after: colon)...].trimmed(leading: false).trimmed(trailing: false)
                    context.headerLines.append((name, value))
                }
                return length
            }
            _ = ccurl_setopt_ptr(handle, CURLOPT_WRITEDATA, opaque)
            _ = ccurl_setopt_write_function(handle) { data, size, count, user in
                guard let user else { return 0 }
                let context = Unmanaged<Context>.fromOpaque(user).takeUnretainedValue()
                let length = size * count
                if context.status >= 300 && context.status < 400 {
                    // The body of a redirect that curl follows.
                    return length
                }
                if !context.decided {
                    context.decided = true
                    context.decision = context.onHeaders(Response(status: context.status, headers: context.headerLines))
                }
                if context.decision == .reject { return 0 }
                do {
                    try context.onBody(UnsafeRawBufferPointer(start: data, count: length))
                } catch {
                    context.bodyError = error
                    return 0
                }
                return length
            }
            _ = ccurl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
            _ = ccurl_setopt_ptr(handle, CURLOPT_XFERINFODATA, opaque)
            _ = ccurl_setopt_xferinfo_function(handle) { user, _, downloaded, _, uploaded in
                guard let user else { return 0 }
                let context = Unmanaged<Context>.fromOpaque(user).takeUnretainedValue()
                return context.shouldAbort(bytes: Int64(downloaded) &+ Int64(uploaded)) ? 1 : 0
            }
            return curl_easy_perform(handle)
        }
        if let error = context.bodyError { throw error }
        if context.cancelled.isSet { throw CancellationError() }
        if context.stalled {
            throw Failure(
                code: CURLE_OPERATION_TIMEDOUT,
                message: "\(url.redactingQuery()): stalled: no data for \(context.stallTimeout / 1_000_000_000) s")
        }
        let response = Response(status: context.status, headers: context.headerLines)
        if context.decision == .reject { return response }
        if !context.decided, code == CURLE_OK {
            // No body at all: the caller still gets to see the headers.
            context.decided = true
            _ = context.onHeaders(response)
        }
        guard code == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw Failure(code: code, message: "\(url.redactingQuery()): \(text)")
        }
        return response
    }
}

extension NIOThreadPool {
    /// Runs a blocking transfer on the pool; task cancellation sets its cancel flag.
    func blockingTransfer<T: Sendable>(_ body: @escaping @Sendable (CancelFlag) throws -> T) async throws -> T {
        let flag = CancelFlag()
        return try await withTaskCancellationHandler {
            try await runIfActive { try body(flag) }
        } onCancel: {
            flag.set()
        }
    }
}

/// A flag that cancels a running transfer from another thread (checked by curl's progress
/// callback, which it calls at least once a second).
public final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public var isSet: Bool { flag.load(ordering: .relaxed) }

    public func set() { flag.store(true, ordering: .relaxed) }
}

extension StringProtocol {
    /// The URL without its query (presigned URLs carry credentials there).
    func redactingQuery() -> String {
        if let question = firstIndex(of: "?") { return String(self[..<question]) + "?…" }
        return String(self)
    }
}
