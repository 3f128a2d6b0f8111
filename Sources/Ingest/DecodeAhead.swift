import Foundation

/// Reads and decodes batches on a thread of its own, ahead of the pipeline, and hands them over
/// in order: with two cores, simdjson and the field extraction run beside the processor instead
/// of before it. The processor sees the same batches, in the same order, as it would reading and
/// decoding them itself, so what it produces is the same.
///
/// At most ``depth`` decoded batches wait; the reader blocks while they do. Only for a source
/// whose ``LineSource/committed(_:)`` may be called while it reads (a file, standard input) and
/// a decoder that no rule reload replaces while it runs.
public final class DecodeAhead: @unchecked Sendable {
    /// A batch as the source gave it, with its decoding.
    public struct Item: Sendable {
        public var batch: LineBatch
        public var status: LineReader.Status
        public var decoded: DecodedBatch
    }

    let source: any LineSource
    let decoder: JSONLineDecoder
    let depth: Int
    let cond = NSCondition()
    // Guarded by `cond`.
    var queue: [Result<Item, any Error>] = []
    var stopped = false

    public init(source: any LineSource, decoder: JSONLineDecoder, depth: Int = 2) {
        self.source = source
        self.decoder = decoder
        self.depth = max(1, depth)
        let thread = Thread { [self] in self.produce() }
        thread.name = "iw-detect decode"
        thread.start()
    }

    func produce() {
        while true {
            cond.lock()
            while queue.count >= depth && !stopped { cond.wait() }
            let stop = stopped
            cond.unlock()
            if stop { return }
            let result = Result<Item, any Error> {
                let (batch, status) = try source.next()
                var decoded = DecodedBatch()
                decoder.decode(batch, into: &decoded)
                return Item(batch: batch, status: status, decoded: decoded)
            }
            cond.lock()
            queue.append(result)
            cond.broadcast()
            cond.unlock()
            switch result {
            case .failure: return
            case .success(let item) where item.status == .endOfInput || item.status == .interrupted: return
            case .success: continue
            }
        }
    }

    /// The next batch, waiting for it to be read and decoded; rethrows what the source threw.
    public func next() throws -> Item {
        cond.lock()
        while queue.isEmpty { cond.wait() }
        let result = queue.removeFirst()
        cond.broadcast()
        cond.unlock()
        return try result.get()
    }

    /// No more batches are wanted: the reader stops before its next read (one in progress ends
    /// first; the thread keeps the source alive until then).
    public func stop() {
        cond.lock()
        stopped = true
        cond.broadcast()
        cond.unlock()
    }
}
