import CompressNIO
import Foundation
import Hummingbird
import IWDetectCore
import Ingest
import Logging
import NIOCore
import Synchronization

/// The request context of the HTTP input: Hummingbird's, plus the client's address.
public struct InputRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's address without the port (a label-free string for rejects, never a metric label).
    var remote: String { remoteAddress?.ipAddress ?? "unknown" }
}

/// The HTTP input and the operator's endpoints of `iw-detect serve`.
///
/// - `POST` or `PUT` on any path: a JSON object, a JSON array of objects, or NDJSON, optionally
///   `Content-Encoding: gzip`. 200 once the records are committed to the ``InputJournal``; 400
///   when any record is not a JSON object (the good ones are still taken, each bad one is
///   recorded as a reject), 401 without the bearer token when one is set, 413 for a body over
///   the limit, 503 with `Retry-After` when the journal is at its bound or shutting down.
/// - `GET /healthz`, `GET /readyz`, `GET /metrics`.
public struct HTTPInput: Sendable {
    public struct Settings: Sendable {
        public var maxBodyBytes: Int
        public var maxRecordBytes: Int
        public var token: String?
        public var retryAfter: Int
        public init(maxBodyBytes: Int, maxRecordBytes: Int, token: String?, retryAfter: Int) {
            self.maxBodyBytes = maxBodyBytes
            self.maxRecordBytes = maxRecordBytes
            self.token = token
            self.retryAfter = retryAfter
        }
    }

    /// What `/readyz` checks, answered by the daemon.
    public struct Readiness: Sendable {
        public var checks: [(name: String, ok: Bool, detail: String)]
        public init(checks: [(name: String, ok: Bool, detail: String)]) { self.checks = checks }
    }

    public let settings: Settings
    public let journal: InputJournal
    public let metrics: ServeMetrics
    let splitters: SplitterPool
    let readiness: @Sendable () -> Readiness
    let scrape: @Sendable () -> [UInt8]
    let dashboard: DashboardRoutes?
    let requestCounter = RequestCounter()
    let startedAt = UInt64(Date().timeIntervalSince1970 * 1000)

    init(settings: Settings, journal: InputJournal, metrics: ServeMetrics,
                readiness: @escaping @Sendable () -> Readiness, scrape: @escaping @Sendable () -> [UInt8], dashboard: DashboardRoutes? = nil) {
        self.settings = settings
        self.journal = journal
        self.metrics = metrics
        self.readiness = readiness
        self.scrape = scrape
        self.dashboard = dashboard
        splitters = SplitterPool(maxBodyBytes: settings.maxBodyBytes, maxRecordBytes: settings.maxRecordBytes)
    }

    /// The router: endpoints first, then the input on every other path.
    public func router() -> Router<InputRequestContext> {
        let router = Router(context: InputRequestContext.self)
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.get("/readyz") { _, _ in
            let r = readiness()
            let ok = r.checks.allSatisfy(\.ok)
            let body = JSONValue.object([("ready", .bool(ok)),
                                         ("checks", .object(r.checks.map { ($0.name, .object([("ok", .bool($0.ok)), ("detail", .string($0.detail))])) }))])
            return HTTPInput.json(ok ? .ok : .serviceUnavailable, body)
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: scrape())))
        }
        dashboard?.register(on: router)
        for path: RouterPath in ["/", "**"] {
            router.post(path) { request, context in try await ingest(request, context) }
            router.put(path) { request, context in try await ingest(request, context) }
        }
        return router
    }

    static func json(_ status: HTTPResponse.Status, _ body: JSONValue, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body.serialized() + "\n")))
    }

    func error(_ status: HTTPResponse.Status, _ message: String, requestID: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.init("X-Request-Id")!] = requestID
        return HTTPInput.json(status, .object([("error", .string(message)), ("request_id", .string(requestID))]), headers: headers)
    }

    func ingest(_ request: Request, _ context: InputRequestContext) async throws -> Response {
        let began = ContinuousClock.now
        let response = await answer(request, context)
        metrics.request(status: Int(response.status.code), duration: ContinuousClock.now - began)
        return response
    }

    func answer(_ request: Request, _ context: InputRequestContext) async -> Response {
        var request = request
        let requestID = request.headers[.init("X-Request-Id")!].map { String($0.prefix(128)) }
            ?? "iwd-\(startedAt)-\(requestCounter.next())"
        if let token = settings.token {
            guard HTTPInput.bearer(request.headers, matches: token) else {
                return error(.unauthorized, "a bearer token is required (Authorization: Bearer …)", requestID: requestID,
                             headers: [.wwwAuthenticate: "Bearer realm=\"iw-detect\""])
            }
        }
        var body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: settings.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return self.error(.contentTooLarge, "the body is larger than \(settings.maxBodyBytes) bytes (serve.max_body_bytes)", requestID: requestID)
        } catch {
            return self.error(.badRequest, "the body could not be read: \(error)", requestID: requestID)
        }
        if let encoding = request.headers[.contentEncoding]?.lowercased(), encoding != "identity" {
            guard encoding == "gzip" || encoding == "x-gzip" else {
                return self.error(.unsupportedMediaType, "Content-Encoding '\(encoding)' is not supported (gzip is)", requestID: requestID)
            }
            do {
                let compressed = body
                body = try body.decompress(with: .gzip, maxSize: settings.maxBodyBytes)
                // The trailer's ISIZE (the length mod 2^32) catches a stream cut short, which
                // the decompressor itself lets through.
                guard compressed.readableBytes >= 18,
                      let size = compressed.getInteger(at: compressed.writerIndex - 4, endianness: .little, as: UInt32.self),
                      size == UInt32(truncatingIfNeeded: body.readableBytes) else {
                    return self.error(.badRequest, "the body is not valid gzip: the stream is truncated", requestID: requestID)
                }
            } catch let e as CompressNIOError where e == .bufferOverflow {
                return self.error(.contentTooLarge, "the body is larger than \(settings.maxBodyBytes) bytes (serve.max_body_bytes) once decompressed", requestID: requestID)
            } catch {
                return self.error(.badRequest, "the body is not valid gzip: \(error)", requestID: requestID)
            }
        }
        let bytes = body.readBytes(length: body.readableBytes) ?? []
        let split = splitters.split(bytes)
        if split.records.isEmpty {
            if !split.isNDJSON {  // `[]`: nothing to take, nothing wrong
                return HTTPInput.json(.ok, .object([("accepted", .number(0)), ("request_id", .string(requestID))]))
            }
            return self.error(.badRequest, "the body holds no JSON record (send an object, an array of objects, or NDJSON)", requestID: requestID)
        }
        let problems = split.problems
        do {
            _ = try await journal.append(InputJournal.Request(remote: context.remote, requestID: requestID, records: split.records))
        } catch InputJournal.AppendError.full(let depth, let bound) {
            if split.records.count > bound {
                return self.error(.contentTooLarge, "the body holds \(split.records.count) records, more than the journal's bound (\(bound))", requestID: requestID)
            }
            return self.error(.serviceUnavailable, InputJournal.AppendError.full(depth: depth, bound: bound).description, requestID: requestID,
                              headers: [.retryAfter: String(settings.retryAfter)])
        } catch InputJournal.AppendError.fullBytes(let bytes, let bound) {
            if split.records.reduce(0, { $0 + $1.bytes.count }) > bound {
                return self.error(.contentTooLarge, "the body is larger than the journal's bound (\(bound) bytes)", requestID: requestID)
            }
            return self.error(.serviceUnavailable, InputJournal.AppendError.fullBytes(bytes: bytes, bound: bound).description, requestID: requestID,
                              headers: [.retryAfter: String(settings.retryAfter)])
        } catch InputJournal.AppendError.closed {
            return self.error(.serviceUnavailable, InputJournal.AppendError.closed.description, requestID: requestID,
                              headers: [.retryAfter: String(settings.retryAfter), .connection: "close"])
        } catch {
            context.logger.error("input journal \(journal.path): \(error)")
            return self.error(.internalServerError, "the input journal could not be written (see iw-detect's log); retry later", requestID: requestID)
        }
        let accepted = split.records.count - problems.count
        var headers: HTTPFields = [:]
        headers[.init("X-Request-Id")!] = requestID
        guard problems.isEmpty else {
            let listed = problems.prefix(20).map { p in
                JSONValue.object([("record", .number(Double(p.index + 1))), ("reason", .string(p.reason.rawValue)), ("detail", .string(p.detail))])
            }
            return HTTPInput.json(.badRequest, .object([
                ("error", .string("\(problems.count) of \(split.records.count) record(s) are not JSON objects; they are recorded as rejects (iw-detect rejects --source http), the other \(accepted) are taken")),
                ("request_id", .string(requestID)), ("accepted", .number(Double(accepted))), ("rejected", .number(Double(problems.count))),
                ("problems", .array(Array(listed))),
            ]), headers: headers)
        }
        return HTTPInput.json(.ok, .object([("accepted", .number(Double(accepted))), ("request_id", .string(requestID))]), headers: headers)
    }

    /// Compares without stopping at the first difference, so the time taken says nothing of
    /// how much of a guess was right.
    /// Whether `Authorization: Bearer <token>` carries `token`: the scheme is case-insensitive
    /// (RFC 6750); the token is compared in constant time.
    static func bearer(_ headers: HTTPFields, matches token: String) -> Bool {
        let given = Array((headers[.authorization] ?? "").utf8)
        let scheme = given.prefix(7).map { $0 | 0x20 } == Array("bearer ".utf8)
        return scheme && constantTimeEqual(Array(given.dropFirst(7)), Array(token.utf8))
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}

/// Body splitters for concurrent requests: each is used by one request at a time.
final class SplitterPool: Sendable {
    let free = Mutex<[HTTPBodySplitter]>([])
    let maxBodyBytes: Int
    let maxRecordBytes: Int

    init(maxBodyBytes: Int, maxRecordBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
        self.maxRecordBytes = maxRecordBytes
    }

    /// Splitters whose parser grew past this (a large body) are not kept.
    static let keptCapacity = 1 << 20

    func split(_ body: [UInt8]) -> HTTPBody {
        let splitter = free.withLock { $0.popLast() } ?? HTTPBodySplitter(maxBodyBytes: maxBodyBytes)
        let result = HTTPBody.split(body, maxRecordBytes: maxRecordBytes, using: splitter)
        if splitter.capacity <= SplitterPool.keptCapacity {
            free.withLock { pool in if pool.count < 64 { pool.append(splitter) } }
        }
        return result
    }
}

/// Numbers the requests that come without an `X-Request-Id`.
final class RequestCounter: Sendable {
    let value = Atomic<UInt64>(0)
    func next() -> UInt64 { value.wrappingAdd(1, ordering: .relaxed).newValue }
}
