import ArgumentParser
import Foundation
import Logging
import S4Core
import S4Detection

/// `--model PATH`, or the bundled default found without flags.
struct ModelOptions: ParsableArguments {
    @Option(
        name: .long, help: "Model file (.safetensors). Default: $S4LISTEN_MODEL, then the bundled models/default.safetensors.")
    var model: String?

    /// Where the bundled default is looked for, in order: beside the executable as installed or as
    /// built, then the working directory. The executable is /proc/self/exe: argv[0] is a bare
    /// name when the shell found the program on PATH.
    static func bundledCandidates() -> [String] {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let executable = URL(fileURLWithPath: path).resolvingSymlinksInPath().deletingLastPathComponent()
        return [
            executable.appendingPathComponent("../share/s4listen/default.safetensors").standardized.path,
            // A build tree: .build/<config>/s4listen → the package's models/.
            executable.appendingPathComponent("../../models/default.safetensors").standardized.path,
            executable.appendingPathComponent("../../../models/default.safetensors").standardized.path,
            FileManager.default.currentDirectoryPath + "/models/default.safetensors",
        ]
    }

    /// `--model`, else `$S4LISTEN_MODEL` when set and not empty, else the bundled default. A path
    /// given either way is used as it is: one that does not exist is an error, never a fall-back to
    /// the bundled model, so a typo in /etc/default/s4listen does not go unnoticed.
    func resolvedPath() throws -> (path: String, fromEnvironment: Bool) {
        if let model { return (model, false) }
        if let fromEnvironment = ProcessInfo.processInfo.environment["S4LISTEN_MODEL"], !fromEnvironment.isEmpty {
            return (fromEnvironment, true)
        }
        let candidates = Self.bundledCandidates()
        guard let found = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) }) else {
            throw CommandFailure("no model given and no bundled default found (looked in: \(candidates.joined(separator: ", ")))")
        }
        return (found, false)
    }

    /// The model and its path; a failure names the file, and `$S4LISTEN_MODEL` when the path came from it.
    func load() throws -> (model: S4Model, path: String) {
        let (path, fromEnvironment) = try resolvedPath()
        do {
            return (try S4Model(safetensors: try ModelFile.read(path)), path)
        } catch {
            let reason = error is CommandFailure ? "\(error)" : "\(path): \(error)"
            throw CommandFailure(fromEnvironment ? "$S4LISTEN_MODEL: \(reason)" : reason)
        }
    }
}

extension ModelOptions {
    /// What `listen`, `classify` and `serve` start from: the model (a model with random weights is
    /// run, with a warning) and the detector's settings with the threshold given.
    func loadForDetection(threshold: ThresholdOption, logger: Logger) throws -> (
        model: S4Model, configuration: DetectorConfiguration
    ) {
        let (model, path) = try load()
        var configuration = DetectorConfiguration()
        configuration.threshold = threshold.threshold
        logger.debug(
            "model loaded",
            metadata: [
                "path": "\(path)", "parameters": "\(model.parameterCount)",
                "threshold": "\(configuration.threshold(for: model))",
            ])
        if model.metadata.isUntrained {
            logger.warning("model \(path) is untrained (random weights): its labels are meaningless")
        }
        return (model, configuration)
    }
}

/// A run-time failure: ArgumentParser prints the message (without the usage text) and exits 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
