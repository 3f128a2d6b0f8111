import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import IWDetectCore

/// POSTs each alert as a JSON object to an HTTP endpoint: the generic SIEM webhook.
///
/// 2xx is success; 408, 429 and 5xx are retryable (honouring `Retry-After`); other statuses are
/// not. The URL may carry a token, so it never appears in errors.
public struct WebhookSink: AlertSink {
    public let name: String
    let url: URL
    let headers: [String: String]
    let timeout: Double
    public var isLocal: Bool { false }

    public init(name: String, url: URL, headers: [String: String] = [:], timeout: Double = 5) {
        self.name = name
        self.url = url
        self.headers = headers
        self.timeout = timeout
    }

    public func deliver(_ alert: StoredAlert) async throws(SinkError) {
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("iw-detect", forHTTPHeaderField: "User-Agent")
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        request.httpBody = Data(alert.json.utf8)
        // The completion-handler API behind a continuation, not `data(for:)`: cancelling a task
        // suspended in FoundationNetworking's async API was seen to deadlock (its cancel handler
        // waits on the session queue while that queue waits on the task). The request's own
        // timeout bounds the wait instead.
        let outcome: (URLResponse?, (any Error)?) = await withCheckedContinuation { continuation in
            URLSession.shared.dataTask(with: request) { _, response, error in
                continuation.resume(returning: (response, error))
            }.resume()
        }
        if let error = outcome.1 {
            throw SinkError("sink '\(name)': request failed (\(WebhookSink.describe(error)))", isRetryable: true)
        }
        guard let response = outcome.0 else { throw SinkError("sink '\(name)': no response", isRetryable: true) }
        guard let http = response as? HTTPURLResponse else {
            throw SinkError("sink '\(name)': not an HTTP response", isRetryable: true)
        }
        try WebhookSink.check(status: http.statusCode, retryAfter: http.value(forHTTPHeaderField: "Retry-After"), sink: name)
    }

    /// Maps an HTTP status to success or a ``SinkError``.
    public static func check(status: Int, retryAfter: String?, sink: String) throws(SinkError) {
        if (200..<300).contains(status) { return }
        let retryable = status == 408 || status == 429 || status >= 500
        throw SinkError("sink '\(sink)': HTTP \(status)", isRetryable: retryable, retryAfter: retryAfter.flatMap(Double.init))
    }

    /// An error's description without any URL it may contain.
    static func describe(_ error: any Error) -> String {
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
}
