import Alerts
import Foundation
import IWDetectCore
import IWDetectTestSupport
import Testing

@Suite struct WebhookSinkTests {
    /// RFC 4231, test case 2.
    @Test func hmacSHA256MatchesTheRFCVector() {
        #expect(WebhookSink.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func aSignedBodyVerifiesAtTheReceiver() async throws {
        let dir = TempDir()
        let recorder = try HTTPRecorder(dir)
        let secret = "whsec-test-secret"
        let sink = WebhookSink(name: "siem", url: URL(string: recorder.url + "/hook")!, signingSecret: secret)
        let alert = SampleAlerts.alert()
        try await sink.deliver([alert])
        let req = try #require(await recorder.wait(for: 1).first)
        #expect(req.body == alert.json.serialized(), "the body is the alert's JSON")
        let header = try #require(req.headers["x-iw-detect-signature"])
        let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").map { p in
            let kv = p.split(separator: "=", maxSplits: 1)
            return (String(kv[0]), String(kv[1]))
        })
        let t = try #require(parts["t"].flatMap { Int64($0) })
        #expect(abs(Double(t) - Date().timeIntervalSince1970) < 60)
        // What a receiver does: HMAC over "t.body" with the shared secret.
        #expect(parts["v1"] == WebhookSink.hmacSHA256(key: Array(secret.utf8), message: Array("\(t).\(req.body)".utf8)))
        #expect(!req.headers.values.contains { $0.contains(secret) }, "the secret itself is never sent")
        // Unsigned by default.
        let plain = WebhookSink(name: "siem", url: URL(string: recorder.url + "/plain")!)
        try await plain.deliver([alert])
        #expect(await recorder.wait(for: 2).last?.headers["x-iw-detect-signature"] == nil)
    }
}
