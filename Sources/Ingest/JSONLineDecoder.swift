import CSimdjson
import IWDetectCore

/// Why a line was not accepted as an event. The raw values are stable codes.
public enum RejectReason: String, Sendable, CaseIterable, Codable {
    case invalidUTF8 = "invalid_utf8"
    case invalidJSON = "invalid_json"
    case notAnObject = "not_an_object"
    case lineTooLong = "line_too_long"
    case missingTimestamp = "missing_timestamp"
    case invalidTimestamp = "invalid_timestamp"
}

/// A line that was not accepted: where it was, why, and a bounded prefix of it.
public struct Reject: Sendable, Equatable {
    public var source: String
    public var line: Int64
    public var offset: Int64
    public var reason: RejectReason
    public var detail: String
    /// At most ``Reject/prefixBytes`` bytes of the line, invalid UTF-8 replaced.
    public var prefix: String
    /// A file source's resolved path (so `rejects --source` finds it however it is named).
    public var sourcePath: String?
    /// The HTTP input's client address and the request's `X-Request-Id`, for its rejects.
    public var remote: String?
    public var requestID: String?

    /// How much of a rejected line is kept: enough to recognise it, not a whole prompt.
    public static let prefixBytes = 120

    public init(source: String, line: Int64, offset: Int64, reason: RejectReason, detail: String, bytes: some Collection<UInt8>) {
        self.source = source
        self.line = line
        self.offset = offset
        self.reason = reason
        self.detail = detail
        self.prefix = String(decoding: bytes.prefix(Reject.prefixBytes), as: UTF8.self)
    }

    /// `FILE:LINE: reason: detail`, the form compilers use, so editors can jump to it.
    public var message: String { "\(source):\(line): \(reason.rawValue): \(detail)" }
}

/// The result of decoding one line.
public enum Decoded {
    case event(Event)
    case reject(RejectReason, String)
}

/// Decodes JSON lines into ``Event``s with simdjson: the whole line is validated, then only the
/// fields in the ``FieldTable`` are extracted, and its derived fields computed from them.
///
/// Not thread-safe: one decoder per ingest loop.
public final class JSONLineDecoder {
    public let fields: FieldTable
    public let maxLineBytes: Int
    /// When set, events without a valid timestamp are stamped with this function's time instead of
    /// being rejected (DESIGN §2, "where configured").
    public var stampMissingTime: (() -> EventTime)?
    private let parser: OpaquePointer
    private var template: [FieldValue]
    /// The parser's index of each slot's path; nil for a derived slot, which is computed instead.
    private let parserPaths: [Int32?]

    public init(fields: FieldTable, maxLineBytes: Int) {
        self.fields = fields
        self.maxLineBytes = maxLineBytes
        guard let p = iwj_parser_new(maxLineBytes) else { fatalError("cannot allocate the JSON parser (\(maxLineBytes) bytes)") }
        self.parser = p
        parserPaths = fields.paths.indices.map { slot -> Int32? in
            if fields.isDerived(slot) { return nil }
            let path = fields.paths[slot]
            return path.utf8.withContiguousStorageIfAvailable { iwj_add_path(p, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count) }
                ?? Array(path.utf8).withUnsafeBufferPointer { iwj_add_path(p, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count) }
        }
        template = Array(repeating: .missing, count: fields.count)
    }

    deinit { iwj_parser_free(parser) }

    /// Decodes one line (without its newline).
    /// - Parameter padded: the caller guarantees ``LineReader/padding`` readable bytes after the
    ///   line (as ``LineReader`` does), so it is parsed in place instead of copied.
    public func decode(_ bytes: UnsafeRawBufferPointer, origin: Event.Origin, padded: Bool = false) -> Decoded {
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        let rc = padded && bytes.baseAddress != nil ? iwj_parse_padded(parser, base, bytes.count) : iwj_parse(parser, base, bytes.count)
        switch rc {
        case Int32(IWJ_OK): break
        case Int32(IWJ_ERR_UTF8): return .reject(.invalidUTF8, String(cString: iwj_last_error(parser)))
        case Int32(IWJ_ERR_NOT_OBJECT): return .reject(.notAnObject, String(cString: iwj_last_error(parser)))
        case Int32(IWJ_ERR_TOO_LONG): return .reject(.lineTooLong, "\(bytes.count) bytes, the cap is \(maxLineBytes)")
        default: return .reject(.invalidJSON, String(cString: iwj_last_error(parser)))
        }
        var values = template
        for slot in 0..<values.count {
            if let path = parserPaths[slot] { values[slot] = extract(path) }
        }
        if !fields.derived.isEmpty { fields.derive(&values) }
        let time: EventTime
        switch values[FieldTable.timestamp] {
        case .string(let s):
            guard let t = Timestamp.parse(s) else {
                return .reject(.invalidTimestamp, "timestamp \"\(s.prefix(40))\" is not RFC 3339 (e.g. 2026-11-21T10:40:17Z)")
            }
            time = t
        case .number(let n):
            guard let t = Timestamp.fromEpoch(n) else { return .reject(.invalidTimestamp, "timestamp \(n) is not a Unix time") }
            time = t
        case .missing, .null:
            guard let stamp = stampMissingTime else { return .reject(.missingTimestamp, "the line has no \"timestamp\" field") }
            time = stamp()
        default:
            return .reject(.invalidTimestamp, "timestamp must be an RFC 3339 string or a Unix time number")
        }
        return .event(Event(time: time, values: values, origin: origin))
    }

    private func extract(_ path: Int32) -> FieldValue {
        var count: Int32 = 0
        var isList: Int32 = 0
        guard let results = iwj_results(parser, path, &count, &isList) else {
            return isList != 0 ? .list([]) : .missing
        }
        if isList != 0 {
            var items: [FieldValue] = []
            items.reserveCapacity(Int(count))
            for i in 0..<Int(count) { items.append(convert(results[i])) }
            return .list(items)
        }
        return count == 0 ? .missing : convert(results[0])
    }

    @inline(__always)
    private func convert(_ v: iwj_value) -> FieldValue {
        switch v.type {
        case Int32(IWJ_NULL): return .null
        case Int32(IWJ_BOOL): return .bool(v.number != 0)
        case Int32(IWJ_NUMBER): return .number(v.number)
        case Int32(IWJ_STRING):
            return .string(String(decoding: UnsafeRawBufferPointer(start: v.str, count: v.len), as: UTF8.self))
        case Int32(IWJ_ARRAY): return .list([])
        case Int32(IWJ_OBJECT): return .object(count: Int(v.count))
        default: return .missing
        }
    }
}
