import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization

/// One HTTP request of a sink and its answer: the shared client of every HTTP sink.
///
/// FoundationNetworking's completion-handler API behind a continuation, not `data(for:)`:
/// cancelling a task suspended in its async API was seen to deadlock. The request's timeout
/// bounds the wait instead. Errors never carry the URL (it may hold a token).
///
/// On Linux a request's own `timeoutInterval` is ignored by `URLSession.shared` (its default of
/// 60 s applies) and a session's timeout counts in whole seconds: each sink has its own session
/// (its own connections: a receiver that hangs cannot queue another sink's requests behind it,
/// even on the same host), with the timeout rounded up to whole seconds, at least 1.
public enum HTTPExchange {
    private static let sessions = Mutex([String: URLSession]())

    static func session(sink: String, timeout: Double) -> URLSession {
        let seconds = max(1, Int(timeout.rounded(.up)))
        let key = "\(sink)\u{1f}\(seconds)"
        return sessions.withLock { cache in
            if let s = cache[key] { return s }
            let configuration = URLSessionConfiguration.ephemeral
            configuration.timeoutIntervalForRequest = TimeInterval(seconds)
            configuration.timeoutIntervalForResource = TimeInterval(seconds)
            let s = URLSession(configuration: configuration)
            cache[key] = s
            return s
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data

        public init(status: Int, headers: [String: String], body: Data) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        /// A header, by case-insensitive name.
        public func header(_ name: String) -> String? {
            headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
    }

    /// Sends `body` and returns the response whatever its status; throws only when no response
    /// came (refused, timed out, reset), as a retryable ``SinkError``.
    public static func send(_ url: URL, method: String = "POST", headers: [String: String], body: Data, timeout: Double,
                            sink: String) async throws(SinkError) -> Response {
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue("iw-detect", forHTTPHeaderField: "User-Agent")
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        request.httpBody = body
        let outcome: (Data?, URLResponse?, (any Error)?) = await withCheckedContinuation { continuation in
            session(sink: sink, timeout: timeout).dataTask(with: request) { data, response, error in
                continuation.resume(returning: (data, response, error))
            }.resume()
        }
        if let error = outcome.2 {
            throw SinkError("sink '\(sink)': request failed (\(describe(error)))", isRetryable: true, unreachable: true)
        }
        guard let http = outcome.1 as? HTTPURLResponse else { throw SinkError("sink '\(sink)': no HTTP response", isRetryable: true, unreachable: true) }
        var headers: [String: String] = [:]
        for (k, v) in http.allHeaderFields {
            if let k = k as? String, let v = v as? String { headers[k] = v }
        }
        return Response(status: http.statusCode, headers: headers, body: outcome.0 ?? Data())
    }

    /// Success for 2xx; otherwise a ``SinkError``: 408, 429 and 5xx retryable (honouring
    /// `Retry-After`), other statuses not. `detail` may add what the receiver said (never echo a
    /// request header back).
    public static func check(_ r: Response, sink: String, detail: String? = nil) throws(SinkError) {
        if (200..<300).contains(r.status) { return }
        let retryable = r.status == 408 || r.status == 429 || r.status >= 500
        throw SinkError("sink '\(sink)': HTTP \(r.status)" + (detail.map { ": \($0)" } ?? ""), isRetryable: retryable,
                        retryAfter: r.header("Retry-After").flatMap(retryAfter), status: r.status)
    }

    /// `Retry-After` in seconds: a number of seconds, or an HTTP date.
    public static func retryAfter(_ value: String) -> Double? {
        if let s = Double(value.trimmingCharacters(in: .whitespaces)), s >= 0 { return s }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = f.date(from: value) else { return nil }
        return max(0, date.timeIntervalSinceNow)
    }

    /// An error's description without any URL it may contain.
    public static func describe(_ error: any Error) -> String {
        let ns = error as NSError
        if ns.domain == NSURLErrorDomain {
            switch ns.code {
            case NSURLErrorTimedOut: return "timed out"
            case NSURLErrorCannotConnectToHost: return "connection refused"
            case NSURLErrorNetworkConnectionLost: return "connection lost"
            case NSURLErrorCannotFindHost: return "host not found"
            default: return "URL error \(ns.code)"
            }
        }
        return "\(ns.domain) \(ns.code)"
    }

    /// The first `limit` characters of a response body, for an error message.
    public static func excerpt(_ body: Data, limit: Int = 200) -> String {
        let s = String(decoding: body.prefix(limit * 4), as: UTF8.self)
        return s.count > limit ? String(s.prefix(limit)) + "…" : s
    }
}
