import Foundation
import PackagePlugin

/// Builds the package's `rules/` folder into the target as Swift source, so the binary carries its
/// bundled rules wherever it is copied or installed (`--rules @bundled`).
@main
struct EmbedRules: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let rules = context.package.directoryURL.appending(path: "rules")
        let output = context.pluginWorkDirectoryURL.appending(path: "BundledRuleFiles+Embedded.swift")
        var inputs: [URL] = []
        if let walk = FileManager.default.enumerator(at: rules, includingPropertiesForKeys: nil) {
            for case let url as URL in walk where ["yaml", "yml"].contains(url.pathExtension) { inputs.append(url) }
        }
        return [
            .buildCommand(
                displayName: "Embedding \(inputs.count) rule files",
                executable: try context.tool(named: "embed-rules").url,
                arguments: [rules.path, output.path],
                inputFiles: inputs.sorted { $0.path < $1.path },
                outputFiles: [output]
            ),
        ]
    }
}
