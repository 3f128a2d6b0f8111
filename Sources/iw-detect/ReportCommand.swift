import ArgumentParser
import Dashboard
import Foundation
import IWDetectCore

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "The monitoring guide's dashboard panels over a range, as terminal tables, JSON lines or one HTML file.",
        discussion: """
            The range ends at the stream clock (the end of the newest five minutes with events), so a replayed file reports its own days. \
            On a terminal each panel is a table; in a pipe, or with --json, each panel is one JSON object per line \
            (the same objects as serve's /api/panels/<name>). --html writes one self-contained page with inline SVG.
            """
    )

    @OptionGroup var common: CommonOptions
    @Option(help: ArgumentHelp("How far back from the stream clock: 1h, 24h, 7d, 30d or any duration such as 90m or 3d.", valueName: "duration"))
    var since = "24h"
    @Option(help: ArgumentHelp("Write the report as one HTML file (inline SVG, no external assets) instead.", valueName: "file"))
    var html: String?
    @Flag(help: "One JSON object per panel and line (the default in a pipe).") var json = false

    func validate() throws {
        guard PanelRange(since) != nil else { throw ValidationError("--since '\(since)' is not a duration from 5m to 400d such as 24h, 7d or 90m") }
    }

    func run() async throws {
        let db = try common.existingDatabase()
        let panels = try PanelSet.read(db, range: PanelRange(since)!)
        if let html {
            var options = Pages.Options()
            options.live = false
            options.alertLink = nil
            let page = Pages.dashboard(panels, options: options)
            do {
                try page.write(toFile: html, atomically: true, encoding: .utf8)
            } catch {
                throw CLIError("\(html): cannot write the report: \(error.localizedDescription)")
            }
            printErr("wrote \(html) (\(page.utf8.count) bytes): \(panels.start) to \(panels.end)")
            return
        }
        if json || !isTerminal(STDOUT_FILENO) {
            for name in PanelSet.names { print(panels.json(name)!.serialized()) }
        } else {
            print(TextReport.render(panels))
        }
    }
}
