import CSimdjson

/// A request body of the HTTP input split into records, as a Logstash `http` input with
/// `codec => json` reads it: one JSON object, a JSON array of objects, or NDJSON (one object per
/// line, blank lines ignored).
///
/// Every record is one line of JSON (an object or array element is minified), ready for the
/// input journal. Records that are not valid JSON objects are kept, in order, with the reason
/// they are bad: the journal still takes them, so that the pipeline records each one as a reject
/// with its request, and the request is answered 400.
public struct HTTPBody: Sendable {
    public struct Record: Sendable {
        public var bytes: [UInt8]
        /// Why the record is not an event, or nil for a JSON object.
        public var problem: (reason: RejectReason, detail: String)?

        public init(bytes: [UInt8], problem: (reason: RejectReason, detail: String)?) {
            self.bytes = bytes
            self.problem = problem
        }
    }

    public var records: [Record]
    /// The body was NDJSON (not one JSON document).
    public var isNDJSON: Bool

    public var problems: [(index: Int, reason: RejectReason, detail: String)] {
        records.indices.compactMap { i in records[i].problem.map { (i, $0.reason, $0.detail) } }
    }

    /// Splits `body`. Records over `maxRecordBytes` are kept as their first bytes, marked too long.
    public static func split(_ body: [UInt8], maxRecordBytes: Int, using splitter: HTTPBodySplitter) -> HTTPBody {
        splitter.split(body, maxRecordBytes: maxRecordBytes)
    }
}

/// The parsers ``HTTPBody/split(_:maxRecordBytes:using:)`` uses. Not thread-safe: one request
/// at a time uses it (a pool hands it from one to the next, hence `@unchecked Sendable`).
public final class HTTPBodySplitter: @unchecked Sendable {
    private let splitter: OpaquePointer
    public let maxBodyBytes: Int

    /// - Parameter maxBodyBytes: the largest (decompressed) body that is split. Memory is taken
    ///   as bodies need it (about 14 bytes per byte of the largest body parsed), not up front.
    public init(maxBodyBytes: Int) {
        guard let s = iwj_splitter_new(maxBodyBytes) else {
            fatalError("cannot allocate a JSON parser")
        }
        splitter = s
        self.maxBodyBytes = maxBodyBytes
    }

    deinit {
        iwj_splitter_free(splitter)
    }

    /// The bytes its parser holds (what a pool weighs before keeping it).
    public var capacity: Int { iwj_splitter_capacity(splitter) }

    func split(_ body: [UInt8], maxRecordBytes: Int) -> HTTPBody {
        var records: [HTTPBody.Record] = []
        func tooLong(_ bytes: ArraySlice<UInt8>) -> HTTPBody.Record {
            HTTPBody.Record(bytes: Array(bytes.prefix(Reject.prefixBytes)),
                            problem: (.lineTooLong, "the record is \(bytes.count) bytes; the limit (max_line_bytes) is \(maxRecordBytes)"))
        }
        let first = body.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        var count = 0
        let whole = first == UInt8(ascii: "[") || first == UInt8(ascii: "{")
            ? Int(body.withUnsafeBufferPointer { iwj_split(splitter, $0.baseAddress, $0.count, &count) }) : Int(IWJ_ERR_JSON)
        if whole == IWJ_OK {
            for i in 0..<count {
                var len = 0
                var isObject: Int32 = 0
                let p = iwj_split_record(splitter, i, &len, &isObject)!
                let bytes = Array(UnsafeBufferPointer(start: p, count: len))
                if len > maxRecordBytes {
                    records.append(tooLong(bytes[...]))
                } else {
                    records.append(HTTPBody.Record(bytes: bytes, problem: isObject == 1 ? nil : (.notAnObject, "array element \(i + 1) is not a JSON object")))
                }
            }
            return HTTPBody(records: records, isNDJSON: false)
        }
        if whole == IWJ_ERR_NOT_OBJECT {
            return HTTPBody(records: [HTTPBody.Record(bytes: Array(body.prefix(Reject.prefixBytes)),
                                                      problem: (.notAnObject, String(cString: iwj_split_error(splitter))))],
                            isNDJSON: false)
        }
        // Not one document: NDJSON, each line on its own.
        var start = 0
        while start < body.count {
            var end = start
            while end < body.count && body[end] != 0x0A { end += 1 }
            var line = body[start..<end]
            if line.last == 0x0D { line = line.dropLast() }
            start = end + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            if line.count > maxRecordBytes {
                records.append(tooLong(line))
                continue
            }
            let rc = Int(line.withUnsafeBufferPointer { iwj_split_validate(splitter, $0.baseAddress, $0.count) })
            let problem: (RejectReason, String)?
            switch rc {
            case IWJ_OK: problem = nil
            case IWJ_ERR_UTF8: problem = (.invalidUTF8, String(cString: iwj_split_error(splitter)))
            case IWJ_ERR_NOT_OBJECT: problem = (.notAnObject, "the line is JSON but not an object")
            default: problem = (.invalidJSON, String(cString: iwj_split_error(splitter)))
            }
            records.append(HTTPBody.Record(bytes: problem == nil ? Array(line) : Array(line.prefix(Reject.prefixBytes)), problem: problem))
        }
        return HTTPBody(records: records, isNDJSON: true)
    }
}
