import Foundation
import IWDetectCore

/// Several sources as one (`serve`: the HTTP input's journal and followed files): each is read
/// on a thread of its own into a short queue, and the pipeline takes batches in the order they
/// were read. Each batch keeps its own source's checkpoint, so a commit records exactly what of
/// each source it covers; what a reader had read ahead and not handed out is read again after a
/// restart.
///
/// It ends when every source has ended: interrupted if any was.
public final class MergedSource: LineSource, @unchecked Sendable {
    public let name: String
    let sources: [any LineSource]
    let cond = NSCondition()
    // Guarded by `cond`.
    var queue: [(LineBatch, caughtUp: Bool)] = []
    var running: Int
    var interrupted = false
    var failure: (any Error)?
    /// Batches each reader may have waiting, at most.
    let depth = 4

    public init(_ sources: [any LineSource]) {
        self.sources = sources
        name = sources.map(\.name).joined(separator: "+")
        running = sources.count
        for source in sources {
            let box = UncheckedSource(source)
            let thread = Thread { [unowned self] in self.read(box.source) }
            thread.name = "iw-detect read \(source.name)"
            thread.start()
        }
    }

    func read(_ source: any LineSource) {
        var waiting = 0
        while true {
            let result = Result { try source.next() }
            cond.lock()
            switch result {
            case .failure(let error):
                failure = failure ?? error
                running -= 1
                cond.broadcast()
                cond.unlock()
                return
            case .success(let (batch, status)):
                let worth = !batch.lines.isEmpty || !batch.rejects.isEmpty || batch.checkpoint != nil
                if !worth && Interruption.reloadPending {
                    // The source returns at once while a reload waits for the pipeline: do not spin.
                    cond.unlock()
                    usleep(10_000)
                    continue
                }
                if worth {
                    if case .data(let caughtUp) = status { queue.append((batch, caughtUp)) } else { queue.append((batch, true)) }
                }
                if status == .endOfInput || status == .interrupted {
                    if status == .interrupted { interrupted = true }
                    running -= 1
                    cond.broadcast()
                    cond.unlock()
                    return
                }
                cond.broadcast()
                // Bounded read-ahead: wait while this reader's batches fill the queue.
                waiting = queue.filter { $0.0.source == batch.source }.count
                while waiting >= depth && failure == nil {
                    cond.wait()
                    waiting = queue.filter { $0.0.source == batch.source }.count
                }
            }
            cond.unlock()
        }
    }

    public func next() throws -> (LineBatch, LineReader.Status) {
        cond.lock()
        defer { cond.unlock() }
        while queue.isEmpty {
            if let failure { throw failure }
            if running == 0 { return (LineBatch(source: name, checkpoint: nil, caughtUp: true), interrupted ? .interrupted : .endOfInput) }
            if Interruption.reloadPending { return (LineBatch(source: name, checkpoint: nil, caughtUp: true), .data(caughtUp: true)) }
            _ = cond.wait(until: Date(timeIntervalSinceNow: 0.25))
        }
        let (batch, caughtUp) = queue.removeFirst()
        cond.broadcast()
        var out = batch
        out.caughtUp = caughtUp && queue.isEmpty
        return (out, .data(caughtUp: out.caughtUp))
    }

    public func committed(_ checkpoint: SourceCheckpoint) {
        for s in sources { s.committed(checkpoint) }
    }
}

/// A source handed to the thread that alone reads it.
private struct UncheckedSource: @unchecked Sendable {
    let source: any LineSource
    init(_ source: any LineSource) { self.source = source }
}
