import IWDetectCore

/// The decoder stage's output for one ``LineBatch``: events in line order, rejects, and counts.
public struct DecodedBatch: Sendable {
    public var events: [Event] = []
    public var rejects: [Reject] = []
    /// Lines read, blank lines among them.
    public var lines: Int64 = 0
    public var blank: Int64 = 0

    public init() {}

    public mutating func removeAll() {
        events.removeAll(keepingCapacity: true)
        rejects.removeAll(keepingCapacity: true)
        lines = 0
        blank = 0
    }
}

extension JSONLineDecoder {
    /// Decodes every line of `batch` in place, appending to `out`. Blank lines (spaces, tabs,
    /// carriage returns only) are counted, not rejected.
    public func decode(_ batch: LineBatch, into out: inout DecodedBatch) {
        out.lines += Int64(batch.lines.count)
        batch.withBytes { all in
            for line in batch.lines {
                switch line {
                case .tooLong(let prefix, let number, let offset, let length):
                    var r = Reject(source: batch.source, line: number, offset: offset, reason: .lineTooLong,
                                   detail: "\(length) bytes, the cap is \(maxLineBytes) (max_line_bytes)", bytes: prefix)
                    r.sourcePath = batch.path
                    out.rejects.append(r)
                case .text(let start, let count, let number, let offset):
                    let bytes = UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])
                    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                        out.blank += 1
                        continue
                    }
                    switch decode(bytes, origin: Event.Origin(source: batch.source, line: number, offset: offset), padded: true) {
                    case .reject(let reason, let detail):
                        var r = Reject(source: batch.source, line: number, offset: offset, reason: reason, detail: detail, bytes: bytes)
                        r.sourcePath = batch.path
                        out.rejects.append(r)
                    case .event(let event):
                        out.events.append(event)
                    }
                }
            }
        }
    }
}
