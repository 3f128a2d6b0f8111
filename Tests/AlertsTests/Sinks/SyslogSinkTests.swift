import Foundation
import Alerts
import IWDetectCore
import IWDetectTestSupport
import Testing
import YAMLSupport
import Yams

/// The syslog CEF sink: golden messages, CEF escaping, octet-counting framing, cutting to fit,
/// config diagnostics, and delivery to a real rsyslogd (imtcp), restarted between two batches.
@Suite struct SyslogSinkTests {
    static let id = SampleAlerts.alert().id

    func sink(port: Int = 514, facility: Int = 20, maxBytes: Int = 8192, timeout: Double = 5) -> SyslogSink {
        SyslogSink(name: "siem", host: "127.0.0.1", port: port, facility: facility, hostname: "ids-host", timeout: timeout,
                   maxMessageBytes: maxBytes)
    }

    /// The CEF record of a whole syslog message.
    fileprivate func cefOf(_ message: String) throws -> CEFRecord {
        let m = try #require(Syslog5424(message), "not RFC 5424: \(message)")
        return try #require(CEFRecord(m.msg), "not CEF: \(m.msg)")
    }

    // MARK: Golden message

    @Test func goldenMessageOfTheSampleAlert() throws {
        let a = SampleAlerts.alert()
        let values = #"{"injection_score":0.91,"user_input":{"redacted":true,"length":412},"count(session_id, 5m)":4,"#
            + #""baseline.output_tokens":{"snapshot_id":3,"n":5000,"mean":212.5,"p99":880,"ready":true,"segment":""}}"#
        let expected = "<163>1 2026-11-21T10:40:17.250Z ids-host iw-detect - alert - "
            + "CEF:0|iw-detect|iw-detect|\(SyslogSink.defaultVersion)|rapid_fire_injection_attempts|"
            + "Detects more than 3 high-score prompt injections in one session within 5 minutes.|8|"
            + "rt=1795257617250 externalId=\(a.id) suser=attacker-7 cs1Label=session_id cs1=sess-42 cs2Label=alert_id cs2=\(a.id) "
            + "cs3Label=group:user_id cs3=attacker-7 cs5Label=event_id cs5=log-0042 act=alert_and_rate_limit "
            + "msg=Review session logs. Consider blocking the user if attacks persist. "
            + "cn1Label=suppressed_since_previous cn1=2 cs4Label=values cs4=\(values)"
        let message = sink().message(for: a)
        #expect(message == expected)

        // Field by field, through an independent parser.
        let m = try #require(Syslog5424(message))
        #expect(m.pri == 163 && m.pri / 8 == 20 && m.pri % 8 == 3, "local4.err")
        #expect(m.version == "1")
        #expect(m.timestamp == "2026-11-21T10:40:17.250Z")
        #expect(m.hostname == "ids-host" && m.appName == "iw-detect" && m.procID == "-" && m.msgID == "alert" && m.structuredData == "-")
        let cef = try #require(CEFRecord(m.msg))
        #expect(cef.header == ["0", "iw-detect", "iw-detect", SyslogSink.defaultVersion, a.rule, a.description, "8"])
        #expect(cef["rt"] == "1795257617250" && cef["externalId"] == a.id && cef["cs2"] == a.id && cef["cs2Label"] == "alert_id")
        #expect(cef["suser"] == "attacker-7" && cef["cs1"] == "sess-42" && cef["cs3"] == "attacker-7" && cef["cs5"] == "log-0042")
        #expect(cef["act"] == a.action && cef["msg"] == a.recommendedAction && cef["cn1"] == "2")
        #expect(cef["cs4"] == values && (try? JSONValue.parse(cef["cs4"] ?? "")) == a.values)
    }

    @Test func missingOptionalFieldsAreLeftOutAndANameFallsBackToTheRule() throws {
        var a = SampleAlerts.alert(session: nil)
        a.userID = nil
        a.description = ""
        a.recommendedAction = ""
        let cef = try cefOf(sink().message(for: a))
        #expect(cef.header[5] == a.rule)
        #expect(cef["suser"] == nil && cef["cs1"] == nil && cef["cs1Label"] == nil && cef["msg"] == nil)
        #expect(cef["cs3"] == "attacker-7")
    }

    @Test(arguments: [
        (Severity.critical, 20, 162, 10), (.high, 20, 163, 8), (.medium, 20, 164, 5), (.low, 20, 166, 3),
        (.high, 16, 131, 8), (.low, 3, 30, 3), (.critical, 0, 2, 10),
    ])
    func priorityIsFacilityTimesEightPlusSeverity(severity: Severity, facility: Int, pri: Int, cef: Int) throws {
        let m = try #require(Syslog5424(sink(facility: facility).message(for: SampleAlerts.alert(severity: severity))))
        #expect(m.pri == pri)
        #expect(try #require(CEFRecord(m.msg)).header[6] == String(cef))
    }

    // MARK: Escaping

    /// (raw, as a header field, as an extension value)
    @Test(arguments: [
        ("a|b", #"a\|b"#, "a|b"),
        (#"a\b"#, #"a\\b"#, #"a\\b"#),
        ("a=b", "a=b", #"a\=b"#),
        ("a\nb", "a b", #"a\nb"#),
        ("a\r\nb", "a  b", #"a\r\nb"#),
        (#"\|=\"#, #"\\\|=\\"#, #"\\|\=\\"#),
        ("x=1 y=2", "x=1 y=2", #"x\=1 y\=2"#),
        ("né ✓ 日本", "né ✓ 日本", "né ✓ 日本"),
    ])
    func cefEscaping(raw: String, header: String, extensionValue: String) throws {
        #expect(SyslogSink.escapeHeader(raw) == header)
        #expect(SyslogSink.escapeExtension(raw) == extensionValue)

        // Through a whole message and back: header fields and extension values come back whole.
        var a = SampleAlerts.alert()
        a.rule = "rule " + raw
        a.description = "desc " + raw
        a.userID = "user " + raw
        a.recommendedAction = raw + " end"
        a.action = raw
        let cef = try cefOf(sink().message(for: a))
        let flat = raw.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        #expect(cef.header.count == 7)
        #expect(cef.header[4] == "rule " + flat && cef.header[5] == "desc " + flat)
        #expect(cef["suser"] == "user " + raw && cef["msg"] == raw + " end" && cef["act"] == raw)
        #expect(cef["rt"] == "1795257617250" && cef["cs2"] == a.id, "the neighbouring extensions are intact")
    }

    // MARK: Framing and size

    @Test(arguments: ["plain", "né", "✓ 日本語 🚨", ""])
    func octetCountIsTheUTF8ByteLength(text: String) throws {
        let framed = SyslogSink.frame(text)
        let space = try #require(framed.firstIndex(of: 0x20))
        #expect(Int(String(decoding: framed[..<space], as: UTF8.self)) == text.utf8.count)
        #expect(Array(framed[(space + 1)...]) == Array(text.utf8))
    }

    @Test func framedMessagesOfABatchSplitBackByTheirCounts() throws {
        var a = SampleAlerts.alert()
        a.description = "Überwachung — ✓ 🚨 injection"
        let messages = [a, SampleAlerts.alert(severity: .low), SampleAlerts.alert(user: "用户-1")].map { sink().message(for: $0) }
        let stream = messages.flatMap(SyslogSink.frame)
        #expect(splitOctetCounted(stream) == messages)
    }

    @Test func aLongMessageIsCutToMaxMessageBytesAtTheLongestValue() throws {
        var a = SampleAlerts.alert()
        a.values = .object([("user_input_excerpt", .string(String(repeating: "ab=c\\ é🚨 ", count: 800))), ("score", .number(0.5))])
        a.recommendedAction = String(repeating: "review ", count: 60)
        for limit in [512, 1024, 2000] {
            let message = sink(maxBytes: limit).message(for: a)
            #expect(message.utf8.count <= limit)
            #expect(message.utf8.count >= limit - 8, "cut no shorter than it must be")
            let cef = try cefOf(message)
            #expect(try #require(cef["cs4"]).hasSuffix("…"))
            #expect(cef["cs2"] == a.id && cef["externalId"] == a.id && cef["rt"] == "1795257617250" && cef["cn1"] == "2", "ids, times and counts are never cut")
            #expect(cef["suser"] == "attacker-7" && cef.header[4] == a.rule)
        }
        // Once the values are as short as the next longest, that one is cut too.
        let tight = try cefOf(sink(maxBytes: 512).message(for: a))
        #expect(try #require(tight["msg"]).hasSuffix("…"))
        // A message that fits is untouched.
        #expect(!sink().message(for: SampleAlerts.alert()).contains("…"))
    }

    // MARK: Config

    func read(_ yaml: String) throws -> (SyslogSinkConfig?, [Diagnostic]) {
        var r = ConfigReader(file: "iw-detect.yaml")
        let node = try #require(try Yams.compose(yaml: yaml))
        let config = SinkRegistry.read(node, reader: &r) as? SyslogSinkConfig
        return (config, r.diagnostics)
    }

    @Test func registeredAndConfigured() throws {
        #expect(SinkRegistry.kindNames.contains("syslog"))
        let (c, d) = try read("""
            name: siem
            type: syslog
            address: siem.internal:6514
            facility: local0
            hostname: ids-01
            timeout: 2.5
            batch_size: 20
            max_message_bytes: 4096
            """)
        #expect(d.isEmpty)
        let config = try #require(c)
        #expect(config.host == "siem.internal" && config.port == 6514 && config.facility == 16 && config.hostname == "ids-01")
        #expect(config.timeout == 2.5 && config.batchSize == 20 && config.maxMessageBytes == 4096)
        #expect(config.summary == "CEF over syslog (RFC 5424, TCP) to siem.internal:6514, facility local0")
        let sink = try #require(try config.makeSink(environment: [:]) as? SyslogSink)
        #expect(sink.batchSize == 20 && sink.kind == "syslog" && !sink.isLocal && sink.hostname == "ids-01")

        let (d2, e2) = try read("{name: s, type: syslog, address: '[::1]:514', facility: 3}")
        #expect(e2.isEmpty && d2?.host == "::1" && d2?.port == 514 && d2?.facility == 3 && d2?.address == "[::1]:514")
        let (d3, _) = try read("{name: s, type: syslog, address: 127.0.0.1:514}")
        #expect(d3?.facility == 20 && d3?.batchSize == 100 && d3?.maxMessageBytes == 8192 && d3?.timeout == 5 && d3?.hostname == nil)
    }

    @Test(arguments: [
        ("{name: s, type: syslog}", "missing_key", "needs 'address'"),
        ("{name: s, type: syslog, address: siem.internal}", "bad_value", "host:port"),
        ("{name: s, type: syslog, address: 'siem:0'}", "bad_value", "port 1-65535"),
        ("{name: s, type: syslog, address: 'siem:70000'}", "bad_value", "port 1-65535"),
        ("{name: s, type: syslog, address: '::1:514'}", "bad_value", "[v6-address]:port"),
        ("{name: s, type: syslog, address: 'siem:514', facility: local9}", "bad_value", "facility must be a name"),
        ("{name: s, type: syslog, address: 'siem:514', facility: 24}", "bad_value", "code 0-23"),
        ("{name: s, type: syslog, address: 'siem:514', hostname: 'my host'}", "bad_value", "printable ASCII"),
        ("{name: s, type: syslog, address: 'siem:514', batch_size: 0}", "out_of_range", "batch_size must be between 1 and 10000"),
        ("{name: s, type: syslog, address: 'siem:514', max_message_bytes: 100}", "out_of_range", "between 512 and 1048576"),
        ("{name: s, type: syslog, address: 'siem:514', timeout: 0}", "out_of_range", "timeout"),
        ("{name: s, type: syslog, address: 'siem:514', tls: true}", "unknown_key", "unknown key 'tls'"),
        ("{name: s, type: syslog, adress: 'siem:514'}", "unknown_key", "did you mean 'address'?"),
    ])
    func badConfigIsDiagnosed(yaml: String, code: String, fragment: String) throws {
        let (_, d) = try read(yaml)
        let hit = d.first { $0.code == code }
        #expect(hit?.message.contains(fragment) == true, "\(d)")
        #expect(hit?.line == 1 && hit?.file == "iw-detect.yaml")
    }

    // MARK: Against a real receiver

    @Test func refusedConnectionIsRetryableAndNamesTheAddress() async throws {
        let port = HTTPRecorder.freePort()
        let s = sink(port: port)
        do throws(SinkError) {
            try await s.deliver([SampleAlerts.alert()])
            Issue.record("delivered to a closed port")
        } catch {
            #expect(error.isRetryable)
            #expect(error.message == "sink 'siem': cannot connect to 127.0.0.1:\(port): Connection refused")
        }
        #expect(!s.isConnected)
    }

    @Test func aReceiverThatStopsReadingTimesTheWriteOut() async throws {
        // A listener that never accepts nor reads, with a tiny receive buffer: the kernel buffers
        // fill and the write must give up after the timeout.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var small: Int32 = 4096
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        try #require(listen(fd, 1) == 0)
        let port = Int(UInt16(bigEndian: addr.sin_port))

        var a = SampleAlerts.alert()
        a.values = .object([("blob", .string(String(repeating: "x", count: 1_000_000)))])
        let s = SyslogSink(name: "siem", host: "127.0.0.1", port: port, hostname: "h", timeout: 0.5, maxMessageBytes: 1_048_576)
        // Batches of 2 MB until the buffers (up to tcp_wmem's maximum) are full.
        var failure: SinkError?
        var took = 0.0
        for _ in 0..<16 where failure == nil {
            let started = Date()
            do throws(SinkError) {
                try await s.deliver([a, a])
            } catch {
                failure = error
            }
            took = Date().timeIntervalSince(started)
        }
        let error = try #require(failure, "32 MB went into a receiver that reads nothing")
        #expect(error.isRetryable)
        #expect(error.message == "sink 'siem': writing to 127.0.0.1:\(port) timed out after 0.5s")
        #expect(took < 3, "bounded by the timeout (and building the batch)")
        #expect(!s.isConnected, "a failed write closes the connection")
    }

    @Test(.enabled(if: Rsyslogd.binary != nil, "rsyslogd is not installed (Debian package rsyslog)"))
    func deliversABatchToRealRsyslog() async throws {
        let dir = TempDir()
        let rsyslog = try Rsyslogd(dir)
        try await rsyslog.start()
        var unicode = SampleAlerts.alert(severity: .critical, user: "用户-✓", event: "log-0043")
        unicode.description = "Pipes | backslashes \\ and equals = in a\nname"
        unicode.recommendedAction = "Block user=用户-✓\nthen review \\logs\\"
        let alerts = [SampleAlerts.alert(), unicode, SampleAlerts.alert(severity: .low, rule: "pii_leak", user: "u-9", session: nil, event: "log-0044")]
        let s = sink(port: rsyslog.port)
        try await s.deliver(alerts)
        #expect(s.isConnected)

        let raw = try await rsyslog.lines("raw", count: 3)
        let parsed = try await rsyslog.lines("parsed", count: 3)
        try #require(raw.count == 3 && parsed.count == 3, "rsyslog wrote \(raw) \(parsed); log: \(rsyslog.log)")
        for (k, a) in alerts.enumerated() {
            // What rsyslog received, byte for byte, is what the sink framed.
            #expect(raw[k] == s.message(for: a))
            // rsyslog's own RFC 5424 parse of it.
            let f = parsed[k].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            try #require(f.count == 9, "\(parsed[k])")
            #expect(f[0] == String(20 * 8 + SyslogSink.syslogSeverity(a.severity)))
            #expect(f[1] == "1" && f[2] == a.eventTime.description && f[3] == "ids-host" && f[4] == "iw-detect")
            #expect(f[5] == "-" && f[6] == "alert" && f[7] == "-")
            let cef = try #require(CEFRecord(f[8]), "\(f[8])")
            let name = a.description.replacingOccurrences(of: "\n", with: " ")
            #expect(cef.header == ["0", "iw-detect", "iw-detect", SyslogSink.defaultVersion, a.rule, name, String(SyslogSink.cefSeverity(a.severity))])
            #expect(cef["rt"] == String(a.eventTime.micros / 1000) && cef["externalId"] == a.id && cef["cs2"] == a.id)
            #expect(cef["suser"] == a.userID && cef["cs1"] == a.sessionID && cef["cs5"] == a.eventID && cef["act"] == a.action)
            #expect(cef["msg"] == a.recommendedAction && cef["cn1"] == String(a.suppressedSincePrevious))
            #expect(cef["cs4"].flatMap { try? JSONValue.parse($0) } == a.values)
        }
    }

    @Test(.enabled(if: Rsyslogd.binary != nil, "rsyslogd is not installed (Debian package rsyslog)"))
    func reconnectsAfterRsyslogRestarts() async throws {
        let dir = TempDir()
        let rsyslog = try Rsyslogd(dir)
        try await rsyslog.start()
        let s = sink(port: rsyslog.port, timeout: 2)
        try await s.deliver([SampleAlerts.alert(event: "log-1")])
        try #require(try await rsyslog.lines("raw", count: 1).count == 1)

        rsyslog.stop()
        do throws(SinkError) {
            try await s.deliver([SampleAlerts.alert(event: "log-2")])
            Issue.record("delivered while rsyslog was down")
        } catch {
            #expect(error.isRetryable, "the worker retries it")
            #expect(error.message.contains("127.0.0.1:\(rsyslog.port)"), "\(error.message)")
        }
        #expect(!s.isConnected)

        try await rsyslog.start()
        try await s.deliver([SampleAlerts.alert(event: "log-2"), SampleAlerts.alert(event: "log-3")])
        #expect(s.isConnected, "reconnected")
        let raw = try await rsyslog.lines("raw", count: 3)
        let events = raw.compactMap { Syslog5424($0).flatMap { CEFRecord($0.msg) }?["cs5"] }
        #expect(events == ["log-1", "log-2", "log-3"], "\(raw)")
    }
}

// MARK: - Test parsers (independent of the sink's code)

/// An RFC 5424 message split into its header fields and MSG.
fileprivate struct Syslog5424 {
    var pri: Int, version: String, timestamp: String, hostname: String, appName: String, procID: String, msgID: String
    var structuredData: String, msg: String

    init?(_ text: String) {
        guard text.hasPrefix("<"), let close = text.firstIndex(of: ">"), let pri = Int(text[text.index(after: text.startIndex)..<close]) else { return nil }
        self.pri = pri
        let parts = text[text.index(after: close)...].split(separator: " ", maxSplits: 7, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 8 else { return nil }
        (version, timestamp, hostname, appName, procID, msgID, structuredData, msg) =
            (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6], parts[7])
    }
}

/// A CEF record: the seven header fields and the extensions, unescaped.
fileprivate struct CEFRecord {
    var header: [String] = []
    var extensions: [(String, String)] = []

    subscript(key: String) -> String? { extensions.first { $0.0 == key }?.1 }

    init?(_ text: String) {
        guard text.hasPrefix("CEF:") else { return nil }
        var chars = Array(text.dropFirst(4))
        var field = "", i = 0
        while i < chars.count && header.count < 7 {
            let c = chars[i]
            if c == "\\" && i + 1 < chars.count && (chars[i + 1] == "\\" || chars[i + 1] == "|") {
                field.append(chars[i + 1])
                i += 2
                continue
            }
            if c == "|" {
                header.append(field)
                field = ""
            } else {
                field.append(c)
            }
            i += 1
        }
        guard header.count == 7 else { return nil }
        chars = Array(chars[i...])
        // Keys: the word before each unescaped '='; a value runs to the space before the next key.
        var equals: [Int] = []
        var j = 0
        while j < chars.count {
            if chars[j] == "\\" { j += 2; continue }
            if chars[j] == "=" { equals.append(j) }
            j += 1
        }
        var keyStarts: [Int] = []
        for e in equals {
            var s = e
            while s > 0 && chars[s - 1] != " " { s -= 1 }
            keyStarts.append(s)
        }
        for (k, e) in equals.enumerated() {
            let key = String(chars[keyStarts[k]..<e])
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber }) else { return nil }
            let end = k + 1 < equals.count ? keyStarts[k + 1] - 1 : chars.count
            extensions.append((key, CEFRecord.unescape(chars[(e + 1)..<max(e + 1, end)])))
        }
    }

    static func unescape(_ s: ArraySlice<Character>) -> String {
        var out = "", escaping = false
        for c in s {
            if escaping {
                switch c {
                case "n": out += "\n"
                case "r": out += "\r"
                default: out.append(c)
                }
                escaping = false
            } else if c == "\\" {
                escaping = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}

/// Splits an octet-counted stream (`LEN SP MSG…`) into its messages.
fileprivate func splitOctetCounted(_ bytes: [UInt8]) -> [String]? {
    var out: [String] = []
    var i = 0
    while i < bytes.count {
        guard let space = bytes[i...].firstIndex(of: 0x20), let n = Int(String(decoding: bytes[i..<space], as: UTF8.self)),
              space + 1 + n <= bytes.count else { return nil }
        out.append(String(decoding: bytes[(space + 1)..<(space + 1 + n)], as: UTF8.self))
        i = space + 1 + n
    }
    return out
}

// MARK: - A real rsyslogd

/// rsyslogd as a child process: imtcp on a loopback port into ruleset `r`, which writes each
/// message's raw text (`out.raw`) and rsyslog's RFC 5424 parse of it, tab-separated
/// (`out.parsed`), into the temp dir. No other module or input (no /dev/log).
fileprivate final class Rsyslogd: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    static let binary: String? = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"].first { FileManager.default.isExecutableFile(atPath: $0) }
    let dir: TempDir
    let port: Int
    let config: String
    private var process: Process?
    private var starts = 0

    init(_ dir: TempDir, port: Int = HTTPRecorder.freePort()) throws {
        self.dir = dir
        self.port = port
        config = dir.write("rsyslog.conf", """
            $WorkDirectory \(dir.path)
            global(maxMessageSize="64k")
            module(load="imtcp")
            template(name="raw" type="string" string="%rawmsg%\\n")
            template(name="parsed" type="string" string="%pri%\\t%protocol-version%\\t%timereported:::date-rfc3339%\\t%hostname%\\t%app-name%\\t%procid%\\t%msgid%\\t%structured-data%\\t%msg%\\n")
            ruleset(name="r") {
              action(type="omfile" file="\(dir.file("out.raw"))" template="raw")
              action(type="omfile" file="\(dir.file("out.parsed"))" template="parsed")
            }
            input(type="imtcp" port="\(port)" address="127.0.0.1" ruleset="r")

            """)
    }

    deinit { stop() }

    /// Starts it and waits until the port accepts connections.
    func start() async throws {
        starts += 1
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Rsyslogd.binary!)
        p.arguments = ["-n", "-f", config, "-i", dir.file("rsyslogd-\(starts).pid")]
        let log = dir.file("rsyslogd-\(starts).log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = FileHandle(forWritingAtPath: log)
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(15)
        while !Rsyslogd.accepts(port) {
            guard p.isRunning, Date() < deadline else {
                throw RsyslogError(message: "rsyslogd did not listen on \(port): \(self.log)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    struct RsyslogError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// SIGKILL (a child of the test runner may have SIGTERM blocked) and wait for it.
    func stop() {
        if let p = process, p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        process = nil
    }

    var log: String {
        (1...max(1, starts)).map { (try? String(contentsOfFile: dir.file("rsyslogd-\($0).log"), encoding: .utf8)) ?? "" }.joined()
    }

    /// The lines of `out.NAME`, once there are `count` (or after 15 s).
    func lines(_ name: String, count: Int) async throws -> [String] {
        let deadline = Date().addingTimeInterval(15)
        while true {
            let text = (try? String(contentsOfFile: dir.file("out.\(name)"), encoding: .utf8)) ?? ""
            let lines = text.split(separator: "\n").map(String.init)
            if lines.count >= count || Date() >= deadline { return lines }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
