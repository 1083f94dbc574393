import ContentStore

/// Where a source writes a blob's bytes: the store's ``Ingest``, or the entry of a bundle
/// being written. Driven by one transfer at a time.
public protocol BlobSink: AnyObject, Sendable {
    /// Bytes held so far (a resumed transfer asks the source from here).
    var offset: Int64 { get }
    /// Starts over from zero bytes (the source ignored a range request).
    func reset() throws
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

extension Ingest: BlobSink {}
