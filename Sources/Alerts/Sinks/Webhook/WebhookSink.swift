import CCrypto
import Foundation
import IWDetectCore
import YAMLSupport
import Yams

/// POSTs each alert as its JSON object to an HTTP endpoint: the generic SIEM webhook.
///
/// 2xx is success; 408, 429 and 5xx are retryable (honouring `Retry-After`); other statuses are
/// not. With a signing secret, the body is signed with HMAC-SHA256 over `TIMESTAMP.BODY`, sent as
/// `X-IW-Detect-Signature: t=TIMESTAMP,v1=HEX` (the receiver recomputes it and checks the time,
/// as Stripe's and Slack's signatures work). The URL may carry a token, so it never appears in
/// errors.
public struct WebhookSink: AlertSink {
    public let name: String
    let url: URL
    let headers: [String: String]
    let timeout: Double
    let signingSecret: [UInt8]?
    public var kind: String { WebhookSinkConfig.kind }

    public init(name: String, url: URL, headers: [String: String] = [:], timeout: Double = 5, signingSecret: String? = nil) {
        self.name = name
        self.url = url
        self.headers = headers
        self.timeout = timeout
        self.signingSecret = signingSecret.map { Array($0.utf8) }
    }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        for alert in alerts {
            let body = Data(alert.json.serialized().utf8)
            var h = headers
            h["Content-Type"] = "application/json"
            if let signingSecret {
                let t = String(Int64(Date().timeIntervalSince1970))
                h["X-IW-Detect-Signature"] = "t=\(t),v1=" + WebhookSink.hmacSHA256(key: signingSecret, message: Array((t + ".").utf8) + Array(body))
            }
            let r = try await HTTPExchange.send(url, headers: h, body: body, timeout: timeout, sink: name)
            try HTTPExchange.check(r, sink: name)
        }
    }

    /// HMAC-SHA256 of `message` as lowercase hex.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), m.bindMemory(to: UInt8.self).baseAddress, m.count, &out, &length)
            }
        }
        return out.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }
}

/// `type: webhook`: POSTs each alert's JSON to an endpoint (a SIEM's HTTP input, a chat bridge).
/// - `url_env` / `url_file` / `url` (one, required): the endpoint; prefer `url_env`, the URL is
///   often a secret.
/// - `timeout`: seconds per request (default 5).
/// - `headers`: extra request headers, a mapping of name to value (not secrets: use the URL).
/// - `signing_secret_env` / `signing_secret_file` / `signing_secret`: sign each body with
///   HMAC-SHA256 (header `X-IW-Detect-Signature: t=…,v1=…`).
public struct WebhookSinkConfig: SinkConfig {
    public static let kind = "webhook"
    public static let keys = ["url", "url_env", "url_file", "timeout", "headers", "signing_secret", "signing_secret_env", "signing_secret_file"]
    public let name: String
    public var url: SecretReference
    public var timeout: Double
    public var headers: [String: String] = [:]
    public var signingSecret: SecretReference?

    public init?(name: String, map: Node.Mapping, item: Node, reader r: inout ConfigReader) {
        self.name = name
        timeout = r.timeout(map, sink: name)
        signingSecret = SecretReference.read(map, "signing_secret", "sink '\(name)'", item: item, required: false, reader: &r)
        if let h = map["headers"] {
            if case .mapping(let hm) = h {
                for (k, v) in hm {
                    guard let key = k.string, let value = v.string else { r.error(k, "bad_type", "sink '\(name)': headers map names to text"); continue }
                    headers[key] = value
                }
            } else {
                r.error(h, "bad_type", "sink '\(name)': headers must be a mapping of header names to values")
            }
        }
        guard let url = SecretReference.read(map, "url", "sink '\(name)'", item: item, required: true, reader: &r) else { return nil }
        self.url = url
    }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink {
        WebhookSink(name: name, url: try url.url(environment, sink: name, key: "url"), headers: headers, timeout: timeout,
                    signingSecret: try signingSecret?.resolve(environment, sink: name, key: "signing_secret"))
    }

    public var summary: String { "POST to the URL in \(url.summary)" + (signingSecret == nil ? "" : ", signed (HMAC-SHA256)") }
}
