import ArgumentParser
import Foundation
import Logging
import S4Audio
import S4Core
import S4Service

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify audio files: one JSON line per file on standard output.",
        discussion: """
            Each file is read at its own sampling rate and down-mixed; Δ is rescaled to the rate \
            (no resampling). The model runs over consecutive windows of its clip length from a zero \
            state; a file's result is its most confident command window. A file that cannot be read \
            gives a line with "error", a message on standard error, and a non-zero exit status; the \
            other files are still classified.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "How S4 computes: recurrent (constant-memory recurrence) or convolution (FFT over the window).")
    var mode: InferenceMode = .recurrent

    @Flag(name: .shortAndLong, help: "Log more on standard error.")
    var verbose = false

    @Argument(help: "Audio files (any format and rate libsndfile reads).")
    var files: [String]

    func run() throws {
        let logger = makeLogger(verbose: verbose)
        let (model, path) = try modelOptions.load()
        logger.debug("model loaded", metadata: ["path": "\(path)", "parameters": "\(model.parameterCount)"])
        if model.metadata.isUntrained {
            logger.warning("model \(path) is untrained (random weights): its labels are meaningless")
        }
        var classifiers: [Int: Classifier] = [:]
        var failures = 0
        for file in files {
            do {
                let reader = try SoundFileReader(path: file)
                let samples = try reader.readAll()
                let classifier = classifiers[reader.sampleRate] ?? Classifier(model: model, sampleRate: Double(reader.sampleRate), mode: mode)
                classifiers[reader.sampleRate] = classifier
                let windows = classifier.classify(samples)
                let best = Self.mostConfidentCommand(windows)
                JSONLine.object([
                    ("file", .string(file)),
                    ("label", .string(best.label)),
                    ("score", .number(Double(best.score))),
                    ("scores", .object(zip(best.labels, best.probabilities).map { ($0, .number(Double($1))) })),
                    ("start", .number(best.start)),
                    ("end", .number(best.end)),
                    ("windows", .integer(windows.count)),
                    ("sample_rate", .integer(reader.sampleRate)),
                    ("mode", .string(mode.rawValue)),
                ]).emit()
            } catch {
                failures += 1
                logger.error("\(error)")
                JSONLine.object([("file", .string(file)), ("error", .string("\(error)"))]).emit()
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }

    /// The window whose best label is a command (not `_unknown_`/`_silence_`) with the highest
    /// score; if no window holds a command, the most confident window.
    static func mostConfidentCommand(_ windows: [Classification]) -> Classification {
        let commands = windows.filter { !$0.label.hasPrefix("_") }
        let pool = commands.isEmpty ? windows : commands
        return pool.max { $0.score < $1.score }!
    }
}

extension InferenceMode: ExpressibleByArgument {}
