import Foundation
import PackagePlugin

/// Compiles the web console's files (the target's `Console/` directory, flat) into the target as string
/// literals, so the one binary serves the console with no files beside it.
///
/// SwiftPM's `.embedInCode` resources would do the same, but as byte-array literals: measured with Swift 6.3,
/// 150 KB of them take 75 s to compile in a debug build, where string literals take under a second.
@main
struct EmbedConsole: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let directory = context.package.directoryURL.appending(path: "Sources/\(target.name)/Console")
        // Every file is an input, so a changed file, an added or a removed one regenerates the source.
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { !$0.hasPrefix(".") }.sorted()
        let inputs = names.map { directory.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "ConsoleFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(names.count) console files",
                executable: try context.tool(named: "ConsoleEmbedder").url,
                arguments: [output.path] + inputs.map(\.path), inputFiles: inputs, outputFiles: [output])
        ]
    }
}
