#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import IWDetectCore
import Synchronization
import YAMLSupport
import Yams

/// Sends each alert as an ArcSight CEF record inside an RFC 5424 syslog message over plain TCP,
/// framed with octet counting (RFC 6587 §3.4.1: `LEN SP MSG`): rsyslog's imtcp, syslog-ng's
/// `syslog()` source and most SIEM collectors read it.
///
/// The message: `<PRI>1 TIMESTAMP HOSTNAME iw-detect - alert - CEF:0|iw-detect|iw-detect|VERSION|
/// RULE|NAME|SEVERITY|EXTENSIONS`, PRI being facility × 8 + the syslog severity (critical 2 crit,
/// high 3 err, medium 4 warning, low 6 info), TIMESTAMP the alert's event time, NAME its
/// description (or the rule), SEVERITY the CEF 0–10 scale (low 3, medium 5, high 8, critical 10).
/// No structured data and no BOM (CEF parsers expect `CEF:` first). A message longer than
/// ``maxMessageBytes`` has its longest value cut with `…` (see ``message(for:)``).
///
/// One persistent connection, opened on the first delivery (with a non-blocking connect bounded by
/// ``timeout``), checked before each write (a receiver that closed it is reconnected at once) and
/// closed after a failed write, so the worker's retry reconnects. Syslog over TCP has no
/// acknowledgements: messages written just before the receiver dies may be lost (RFC 6587 §4).
/// The blocking socket work runs on the sink's own serial queue, off Swift's cooperative threads,
/// so a slow receiver never holds up another sink. Plain TCP only, no TLS.
public final class SyslogSink: AlertSink {
    public let name: String
    public let host: String
    public let port: Int
    /// The syslog facility code (0–23; local4 = 20).
    public let facility: Int
    /// RFC 5424 HOSTNAME: printable ASCII, no spaces.
    public let hostname: String
    public let timeout: Double
    public let batchSize: Int
    public let maxMessageBytes: Int
    /// The CEF header's device version.
    public let version: String
    public var kind: String { SyslogSinkConfig.kind }

    /// iw-detect's version for the CEF header.
    public static let defaultVersion = IWDetectVersion.current

    /// Lock `connection`: the socket (-1 when closed). Held for a whole check-connect-write, so
    /// one batch's frames are never interleaved with another's; only this sink's queue takes it.
    private let connection = Mutex<Int32>(-1)
    /// Runs the blocking socket calls, one delivery at a time.
    private let queue: DispatchQueue

    public init(name: String, host: String, port: Int, facility: Int = 20, hostname: String? = nil, timeout: Double = 5,
                batchSize: Int = 100, maxMessageBytes: Int = 8192, version: String = SyslogSink.defaultVersion) {
        self.name = name
        self.host = host
        self.port = port
        self.facility = facility
        self.hostname = SyslogSink.sanitizeHostname(hostname ?? SyslogSink.localHostname())
        self.timeout = timeout
        self.batchSize = max(1, batchSize)
        self.maxMessageBytes = maxMessageBytes
        self.version = version
        queue = DispatchQueue(label: "iw-detect.sink.syslog.\(name)")
    }

    deinit {
        connection.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// `host:port` (`[v6]:port`), as errors name it.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public func deliver(_ alerts: [AlertRecord]) async throws(SinkError) {
        guard !alerts.isEmpty else { return }
        var bytes: [UInt8] = []
        for a in alerts { bytes += SyslogSink.frame(message(for: a)) }
        let frames = bytes
        try await run { () throws(SinkError) in try self.send(frames) }
    }

    /// Opens the connection (if it is not open) without sending anything.
    public func healthcheck() async throws(SinkError) {
        try await run { () throws(SinkError) in try self.send([]) }
    }

    /// Whether a connection is open now (tests).
    public var isConnected: Bool { connection.withLock { $0 >= 0 } }

    private func run(_ work: @escaping @Sendable () throws(SinkError) -> Void) async throws(SinkError) {
        let result: Result<Void, SinkError> = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Result { () throws(SinkError) in try work() }) }
        }
        try result.get()
    }

    // MARK: Socket

    private func send(_ bytes: [UInt8]) throws(SinkError) {
        try connection.withLock { (fd: inout Int32) throws(SinkError) in
            if fd >= 0 && !SyslogSink.isOpen(fd) {
                close(fd)
                fd = -1
            }
            let deadline = SyslogSink.now() + timeout
            if fd < 0 { fd = try connect(deadline: deadline) }
            do throws(SinkError) {
                try write(bytes, to: fd, deadline: deadline)
            } catch {
                close(fd)
                fd = -1
                throw error
            }
        }
    }

    private func failure(_ what: String) -> SinkError {
        SinkError("sink '\(name)': \(what)", isRetryable: true)
    }

    private func connect(deadline: Double) throws(SinkError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw failure("cannot resolve \(address): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }
        var lastError = "no address"
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let ai = next {
            next = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            if fd < 0 { lastError = String(cString: strerror(errno)); continue }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            #if canImport(Darwin)
            _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            var r = Glibc_connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen)
            if r != 0 && (errno == EINPROGRESS || errno == EINTR) {
                switch SyslogSink.wait(fd, events: Int16(POLLOUT), until: deadline) {
                case .ready:
                    var soError: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
                    if soError == 0 { r = 0 } else { errno = soError }
                case .timedOut:
                    close(fd)
                    throw failure("connecting to \(address) timed out after \(JSONValue.format(timeout))s")
                case .failed(let e):
                    errno = e
                }
            }
            if r == 0 { return fd }
            lastError = String(cString: strerror(errno))
            close(fd)
        }
        throw failure("cannot connect to \(address): \(lastError)")
    }

    private func write(_ bytes: [UInt8], to fd: Int32, deadline: Double) throws(SinkError) {
        var done = 0
        while done < bytes.count {
            #if canImport(Glibc)
            let flags = Int32(MSG_NOSIGNAL)
            #else
            let flags: Int32 = 0
            #endif
            let n = bytes.withUnsafeBytes { Glibc_send(fd, $0.baseAddress! + done, $0.count - done, flags) }
            if n >= 0 { done += n; continue }
            let e = errno
            if e == EINTR { continue }
            guard e == EAGAIN || e == EWOULDBLOCK else {
                throw failure("writing to \(address) failed: \(String(cString: strerror(e)))")
            }
            switch SyslogSink.wait(fd, events: Int16(POLLOUT), until: deadline) {
            case .ready: continue
            case .timedOut: throw failure("writing to \(address) timed out after \(JSONValue.format(timeout))s")
            case .failed(let e): throw failure("writing to \(address) failed: \(String(cString: strerror(e)))")
            }
        }
    }

    private enum Wait { case ready, timedOut, failed(Int32) }

    private static func wait(_ fd: Int32, events: Int16, until deadline: Double) -> Wait {
        while true {
            let left = deadline - now()
            if left <= 0 { return .timedOut }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&p, 1, Int32(min(left * 1000, 3_600_000).rounded(.up)))
            if r < 0 {
                if errno == EINTR { continue }
                return .failed(errno)
            }
            if r == 0 { return .timedOut }
            return .ready
        }
    }

    /// Whether the receiver still holds the connection: a syslog receiver sends nothing, so a
    /// readable socket means it closed (end of file) or reset it.
    private static func isOpen(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return true }
        if p.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return false }
        var buffer = [UInt8](repeating: 0, count: 512)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { continue }  // whatever it sent: discarded
            if n == 0 { return false }
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
        }
    }

    private static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    static func localHostname() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        guard buffer.withUnsafeMutableBytes({ gethostname($0.baseAddress!.assumingMemoryBound(to: CChar.self), 255) }) == 0 else { return "-" }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// RFC 5424 HOSTNAME: 1–255 printable ASCII characters, no space (others become `_`), `-` if empty.
    static func sanitizeHostname(_ s: String) -> String {
        let cleaned = String(String.UnicodeScalarView(s.unicodeScalars.prefix(255).map { (33...126).contains($0.value) ? $0 : "_" }))
        return cleaned.isEmpty ? "-" : cleaned
    }

    // MARK: Message

    /// The syslog severity of an alert (RFC 5424 table 2).
    public static func syslogSeverity(_ s: Severity) -> Int {
        switch s {
        case .critical: return 2
        case .high: return 3
        case .medium: return 4
        case .low: return 6
        }
    }

    /// The CEF severity (0–10).
    public static func cefSeverity(_ s: Severity) -> Int {
        switch s {
        case .critical: return 10
        case .high: return 8
        case .medium: return 5
        case .low: return 3
        }
    }

    /// A CEF header field: `\` → `\\`, `|` → `\|`; line breaks (not allowed in the header) → space.
    public static func escapeHeader(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "|": out += "\\|"
            case "\n", "\r": out += " "
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A CEF extension value: `\` → `\\`, `=` → `\=`, line feed → `\n`, carriage return → `\r`.
    public static func escapeExtension(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "=": out += "\\="
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// `LEN SP MSG`, LEN the byte length of the UTF-8 message (RFC 6587 §3.4.1).
    public static func frame(_ message: String) -> [UInt8] {
        let bytes = Array(message.utf8)
        return Array("\(bytes.count) ".utf8) + bytes
    }

    /// The CEF extensions of an alert, in order: (key, value, whether it may be cut to fit).
    public static func extensions(_ a: AlertRecord) -> [(key: String, value: String, cuttable: Bool)] {
        var e: [(key: String, value: String, cuttable: Bool)] = []
        e.append(("rt", String(a.eventTime.micros / 1000), false))
        e.append(("externalId", a.id, false))
        if let u = a.userID { e.append(("suser", u, true)) }
        if let s = a.sessionID {
            e.append(("cs1Label", "session_id", false))
            e.append(("cs1", s, true))
        }
        e.append(("cs2Label", "alert_id", false))
        e.append(("cs2", a.id, false))
        if !a.groupValue.isEmpty {
            e.append(("cs3Label", "group:" + a.groupKey.joined(separator: ","), false))
            e.append(("cs3", a.groupValue, true))
        }
        e.append(("cs5Label", "event_id", false))
        e.append(("cs5", a.eventID, true))
        if !a.action.isEmpty { e.append(("act", a.action, true)) }
        if !a.recommendedAction.isEmpty { e.append(("msg", a.recommendedAction, true)) }
        e.append(("cn1Label", "suppressed_since_previous", false))
        e.append(("cn1", String(a.suppressedSincePrevious), false))
        e.append(("cs4Label", "values", false))
        e.append(("cs4", a.values.serialized(), true))
        return e
    }

    /// The RFC 5424 message of an alert (without framing), at most ``maxMessageBytes`` bytes: while
    /// it is longer, the longest cuttable value (an extension value or the header's name; never
    /// an id, a label, a time or a count) is cut at a character boundary and ends with `…`.
    public func message(for a: AlertRecord) -> String {
        let pri = facility * 8 + SyslogSink.syslogSeverity(a.severity)
        let head = "<\(pri)>1 \(a.eventTime) \(hostname) iw-detect - alert - "
            + "CEF:0|iw-detect|iw-detect|\(SyslogSink.escapeHeader(version))|\(SyslogSink.escapeHeader(a.rule))|"
        let tail = "|\(SyslogSink.cefSeverity(a.severity))|"
        // Slot 0 is the header's name; 1… the extensions.
        var parts: [(key: String, value: String, cuttable: Bool, header: Bool)] =
            [("", a.description.isEmpty ? a.rule : a.description, true, true)]
        parts += SyslogSink.extensions(a).map { ($0.key, $0.value, $0.cuttable, false) }
        func escaped(_ i: Int) -> String {
            parts[i].header ? SyslogSink.escapeHeader(parts[i].value) : SyslogSink.escapeExtension(parts[i].value)
        }
        func render() -> String {
            head + escaped(0) + tail + (1..<parts.count).map { parts[$0].key + "=" + escaped($0) }.joined(separator: " ")
        }
        var text = render()
        var total = text.utf8.count
        while total > maxMessageBytes {
            var longest = -1, longestBytes = 0
            for i in parts.indices where parts[i].cuttable {
                let n = escaped(i).utf8.count
                if n > longestBytes { longest = i; longestBytes = n }
            }
            guard longest >= 0, longestBytes > 4 else { break }  // nothing left to cut
            let target = max(0, longestBytes - (total - maxMessageBytes) - 3)
            var value = parts[longest].value
            if value.hasSuffix("…") { value.removeLast() }
            var kept = "", keptBytes = 0
            for c in value {
                let s = String(c)
                let n = (parts[longest].header ? SyslogSink.escapeHeader(s) : SyslogSink.escapeExtension(s)).utf8.count
                if keptBytes + n > target { break }
                kept.append(c)
                keptBytes += n
            }
            parts[longest].value = kept + "…"
            text = render()
            total = text.utf8.count
        }
        return text
    }
}

// The C calls whose names the sink's methods shadow.
private func Glibc_connect(_ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr>!, _ len: socklen_t) -> Int32 { connect(fd, addr, len) }
private func Glibc_send(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, _ flags: Int32) -> Int { send(fd, p, n, flags) }

/// `type: syslog`: each alert as an ArcSight CEF record in an RFC 5424 message over TCP, framed
/// with octet counting (RFC 6587), for rsyslog, syslog-ng and SIEM collectors. Plain TCP only:
/// there is no TLS (run a local relay such as rsyslog's omfwd with TLS for remote receivers).
/// - `address` (required): the receiver, `host:port` (`[v6-address]:port` for IPv6).
/// - `facility`: the syslog facility, a name (`kern`, `user`, `mail`, `daemon`, `auth`, `syslog`,
///   `lpr`, `news`, `uucp`, `cron`, `authpriv`, `ftp`, `ntp`, `audit`, `alert`, `clock`,
///   `local0` … `local7`) or its code 0–23 (default `local4`, 20).
/// - `hostname`: the HOSTNAME field (default this machine's host name); printable ASCII without spaces.
/// - `timeout`: seconds to connect and to write one batch (default 5).
/// - `batch_size`: alerts per write, 1–10000 (default 100).
/// - `max_message_bytes`: the longest message in bytes, framing excluded, 512–1048576 (default
///   8192; the longest value is cut with `…` to fit). Check the receiver's limit: rsyslog's
///   `maxMessageSize` defaults to 8k, syslog-ng's `log-msg-size` to 64 KiB.
public struct SyslogSinkConfig: SinkConfig {
    public static let kind = "syslog"
    public static let keys = ["address", "facility", "hostname", "timeout", "batch_size", "max_message_bytes"]
    public let name: String
    public var host: String
    public var port: Int
    public var facility: Int = 20
    public var hostname: String?
    public var timeout: Double
    public var batchSize: Int = 100
    public var maxMessageBytes: Int = 8192

    /// The facility names and codes (RFC 5424 table 1).
    public static let facilities: [String: Int] = [
        "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8, "cron": 9,
        "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15,
        "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
    ]

    public init?(name: String, map: Node.Mapping, item: Node, reader r: inout ConfigReader) {
        self.name = name
        timeout = r.timeout(map, sink: name)
        if let n = r.int(map, "batch_size", "sink '\(name)': batch_size", in: 1...10_000) { batchSize = Int(n) }
        if let n = r.int(map, "max_message_bytes", "sink '\(name)': max_message_bytes", in: 512...1_048_576) { maxMessageBytes = Int(n) }
        if let node = map["facility"], let f = r.string(map, "facility", "sink '\(name)': facility") {
            if let code = SyslogSinkConfig.facilities[f.lowercased()] {
                facility = code
            } else if let code = Int(f), (0...23).contains(code) {
                facility = code
            } else {
                r.error(node, "bad_value", "sink '\(name)': facility must be a name such as local4 or daemon, or a code 0-23, got '\(f.prefix(40))'")
            }
        }
        if let node = map["hostname"], let h = r.string(map, "hostname", "sink '\(name)': hostname") {
            if h.utf8.count <= 255, h.unicodeScalars.allSatisfy({ (33...126).contains($0.value) }) {
                hostname = h
            } else {
                r.error(node, "bad_value", "sink '\(name)': hostname must be printable ASCII without spaces, at most 255 characters")
            }
        }
        guard let address = r.string(map, "address", "sink '\(name)': address") else {
            if map["address"] == nil { r.error(item, "missing_key", "sink '\(name)': a syslog sink needs 'address' (host:port of the TCP receiver)") }
            return nil
        }
        guard let (host, port) = SyslogSinkConfig.parseAddress(address) else {
            r.error(map["address"], "bad_value", "sink '\(name)': address must be host:port (or [v6-address]:port) with a port 1-65535, got '\(address.prefix(80))'")
            return nil
        }
        self.host = host
        self.port = port
    }

    /// `host:port` or `[v6]:port`.
    public static func parseAddress(_ s: String) -> (String, Int)? {
        let host: Substring, portText: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].hasPrefix(":") else { return nil }
            host = s[s.index(after: s.startIndex)..<close]
            portText = s[s.index(close, offsetBy: 2)...]
        } else {
            guard let colon = s.lastIndex(of: ":"), !s[..<colon].contains(":") else { return nil }
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }), portText.allSatisfy(\.isASCII),
              let port = Int(portText), (1...65_535).contains(port) else { return nil }
        return (String(host), port)
    }

    public func makeSink(environment: [String: String]) throws(SinkError) -> any AlertSink {
        SyslogSink(name: name, host: host, port: port, facility: facility, hostname: hostname, timeout: timeout,
                   batchSize: batchSize, maxMessageBytes: maxMessageBytes)
    }

    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var summary: String {
        let f = SyslogSinkConfig.facilities.first { $0.value == facility }?.key ?? String(facility)
        return "CEF over syslog (RFC 5424, TCP) to \(address), facility \(f)"
    }
}
