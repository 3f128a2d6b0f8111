import Alerts
import Dashboard
import Foundation
import Hummingbird
import IWDetectCore
import NIOCore
import Pipeline
import Synchronization

/// The operator's pages of `serve`: the dashboard at `/`, one JSON document per panel at
/// `/api/panels/<name>?range=24h`, an alert's page at `/alerts/<id>` and a session's events at
/// `/sessions/<id>` (from the forensic index). Read-only: each request
/// reads the state database on a connection of its own (WAL readers do not block the pipeline),
/// and the input's bearer token, when set, protects them too.
struct DashboardRoutes: Sendable {
    let databasePath: String
    /// The input journal (what HTTP events are read back from).
    let journalPath: String
    let token: String?
    /// Lines per second over the last minute, from the running pipeline.
    let liveRate: @Sendable () -> Double?

    func register(on router: Router<InputRequestContext>) {
        router.get("/") { request, _ in try self.page(request) }
        router.get("/static/refresh.js") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: Pages.refreshScript)))
        }
        router.get("/api/panels") { request, _ in
            guard self.authorized(request) else { return self.unauthorized() }
            return HTTPInput.json(.ok, .object([("panels", .array(PanelSet.names.map { .string($0) })), ("ranges", .array(PanelRange.choices.map { .string($0) }))]))
        }
        router.get("/api/panels/{name}") { request, context in
            guard self.authorized(request) else { return self.unauthorized() }
            let name = context.parameters.get("name") ?? ""
            guard PanelSet.names.contains(name) else {
                return HTTPInput.json(.notFound, .object([("error", .string("no panel '\(name)'; panels: \(PanelSet.names.joined(separator: ", "))"))]))
            }
            guard let range = self.range(request) else { return self.badRange() }
            let panels = try self.read(range)
            return HTTPInput.json(.ok, panels.json(name)!)
        }
        router.get("/alerts/{id}") { request, context in
            guard self.authorized(request) else { return self.unauthorized() }
            let id = DashboardRoutes.decoded(context.parameters.get("id") ?? "")
            let db = try Database(path: self.databasePath, readOnly: true)
            guard let row = try db.query("SELECT rule, severity, event_time, json FROM alerts WHERE id = ?", [.text(id)], {
                ($0.text(0), $0.text(1), EventTime(micros: $0.int(2)), $0.text(3))
            }).first else {
                return DashboardRoutes.html(.notFound, "<!doctype html><title>not found</title><p>no alert \(Pages.escape(id))</p>")
            }
            let record = try? AlertRecord(json: row.3)
            let deliveries = try Outbox.entries(db, alertID: id).map { (sink: $0.sink, status: $0.status, attempts: Int64($0.attempts)) }
            return DashboardRoutes.html(.ok, Pages.alert(id: id, rule: row.0, severity: row.1, time: row.2, summary: record?.brief ?? "", json: row.3,
                                                         deliveries: deliveries, sessionHref: record?.sessionID.map(DashboardRoutes.sessionHref),
                                                         session: record?.sessionID))
        }
        router.get("/sessions/{id}") { request, context in
            guard self.authorized(request) else { return self.unauthorized() }
            let id = DashboardRoutes.decoded(context.parameters.get("id") ?? "")
            let db = try Database(path: self.databasePath, readOnly: true)
            let q = try ForensicQuery.session(db, id: id, journalPath: self.journalPath)
            return DashboardRoutes.html(.ok, Pages.session(id: id, query: q, alertLink: { "/alerts/" + $0 }))
        }
    }

    /// A path parameter as sent: percent-decoded (Hummingbird gives the raw segment).
    static func decoded(_ segment: String) -> String { segment.removingPercentEncoding ?? segment }

    /// A session's page (the id percent-encoded as a path segment).
    @Sendable static func sessionHref(_ id: String) -> String {
        "/sessions/" + (id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? id)
    }

    func page(_ request: Request) throws -> Response {
        guard authorized(request) else { return unauthorized() }
        guard let range = range(request) else { return badRange() }
        let panels = try read(range)
        var options = Pages.Options()
        options.alertLink = { "/alerts/" + $0 }
        options.sessionLink = DashboardRoutes.sessionHref
        return DashboardRoutes.html(.ok, Pages.dashboard(panels, options: options))
    }

    func read(_ range: PanelRange) throws -> PanelSet {
        let db = try Database(path: databasePath, readOnly: true)
        var panels = try PanelSet.read(db, range: range)
        panels.ingest.liveLinesPerSecond = liveRate()
        return panels
    }

    /// `?range=` (default 24h): one of the dashboard's choices or another duration.
    func range(_ request: Request) -> PanelRange? { PanelRange(request.uri.queryParameters.get("range") ?? "24h") }

    func badRange() -> Response {
        HTTPInput.json(.badRequest, .object([("error", .string("range must be a duration from 5m to 400d such as \(PanelRange.choices.joined(separator: ", "))"))]))
    }

    func authorized(_ request: Request) -> Bool {
        guard let token else { return true }
        return HTTPInput.bearer(request.headers, matches: token)
    }

    func unauthorized() -> Response {
        var r = HTTPInput.json(.unauthorized, .object([("error", .string("a bearer token is required (Authorization: Bearer …)"))]))
        r.headers[.wwwAuthenticate] = "Bearer realm=\"iw-detect\""
        return r
    }

    static func html(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .init("Content-Security-Policy")!: "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; img-src data:"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Lines read per second over the last minute, from the commits' running totals.
final class LineRate: Sendable {
    let samples = Mutex<[(time: Double, lines: Int64)]>([])

    func record(lines: Int64, at time: Double = Date().timeIntervalSince1970) {
        samples.withLock { s in
            s.append((time, lines))
            s.removeAll { $0.time < time - 60 }
        }
    }

    func rate(now: Double = Date().timeIntervalSince1970) -> Double? {
        samples.withLock { s in
            guard let first = s.first, let last = s.last else { return nil }
            let span = max(1, now - first.time)
            return Double(last.lines - first.lines) / span
        }
    }
}
