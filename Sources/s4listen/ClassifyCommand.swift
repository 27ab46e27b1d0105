import ArgumentParser
import Foundation
import Logging
import S4Core
import S4Detection
import S4Service

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify audio files: one JSON line per file on standard output, in the order given.",
        discussion: """
            Each file is read at its own sampling rate and down-mixed; Δ is rescaled to the rate \
            (no resampling). A clip (up to 1.5 windows of the model's clip length) is classified in \
            windows from a zero state, and its result is its most confident command window. A longer \
            file goes through the same detector as `listen` and its line lists the "detections". A \
            file that cannot be read gives a line with "error", a message on standard error and a \
            non-zero exit status; the other files are still classified.
            Batch jobs: --files-from FILE (or - for standard input) reads the paths one a line, \
            and --shard K/N classifies part K of N of the list (K from 1: the file at 0-based \
            position i is in part i mod N + 1), so that N machines share a list and their outputs, \
            concatenated, hold every file once. $S4LISTEN_FILES_FROM and $S4LISTEN_SHARD stand \
            for the options when they are not given.
            Examples:
              s4listen classify --files-from list.txt --shard $((JOB_COMPLETION_INDEX+1))/8
              find archive -name '*.flac' | s4listen classify --files-from - --jobs 2
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "How S4 computes clips: recurrent (constant-memory recurrence) or convolution (FFT over the window).")
    var mode: InferenceMode = .recurrent

    @Option(help: "Files classified at once (threads).")
    var jobs: Int = 1

    @OptionGroup var thresholdOption: ThresholdOption

    @Flag(name: .shortAndLong, help: "Log more on standard error.")
    var verbose = false

    @Option(
        help:
            "A file of audio file paths, one a line (- for standard input); blank lines are ignored. Default: $S4LISTEN_FILES_FROM."
    )
    var filesFrom: String?

    @Option(
        help:
            "K/N: classify only part K of N of the files (K from 1; the file at position i, from 0, is in part i mod N + 1). Default: $S4LISTEN_SHARD."
    )
    var shard: String?

    @Argument(help: "Audio files (any format and rate libsndfile reads); those of --files-from follow.")
    var files: [String] = []

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        _ = try selectedShard()
        guard !files.isEmpty || listPath != nil else {
            throw ValidationError("give audio files, or --files-from FILE (- for standard input)")
        }
    }

    /// `--files-from`, else `$S4LISTEN_FILES_FROM`.
    private var listPath: String? { filesFrom ?? Self.environment("S4LISTEN_FILES_FROM") }

    /// `--shard`, else `$S4LISTEN_SHARD`; nil for the whole list.
    private func selectedShard() throws -> Shard? {
        let (text, origin) = shard.map { ($0, "--shard") } ?? (Self.environment("S4LISTEN_SHARD"), "S4LISTEN_SHARD")
        guard let text else { return nil }
        guard let shard = Shard(text) else {
            throw ValidationError("\(origin) must be K/N, part K of N counted from 1 (1 ≤ K ≤ N), got '\(text)'")
        }
        return shard
    }

    private static func environment(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The files given, then those of the list, cut to the shard.
    private func selectedFiles() throws -> [String] {
        var all = files
        if let listPath { all += try FileList.read(listPath) }
        return try selectedShard()?.select(all) ?? all
    }

    func run() throws {
        let logger = makeLogger(verbose: verbose)
        let files = try selectedFiles()
        let (model, detectorConfiguration) = try modelOptions.loadForDetection(threshold: thresholdOption, logger: logger)
        if mode == .convolution && model.metadata.headPooling == .frame {
            throw CommandFailure("--mode convolution: the model has a streaming head, which runs in recurrent mode only")
        }
        let batch = FileBatch(model: model, mode: mode, detectorConfiguration: detectorConfiguration)
        let showsProgress = isatty(STDERR_FILENO) == 1 && files.count > 1
        let failures = try batch.run(
            files, jobs: jobs, output: { try JSONLine.raw($0).emit() }, failed: { _, error in logger.error("\(error)") },
            progress: showsProgress ? Self.drawProgress : nil)
        if failures > 0 { throw ExitCode(1) }
    }

    /// A progress bar on standard error (a terminal), redrawn in place.
    static func drawProgress(done: Int, of count: Int) {
        let width = 30
        let filled = width * done / max(count, 1)
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(count) files\(done == count ? "\n" : "")".utf8))
    }
}

extension InferenceMode: ExpressibleByArgument {
    /// `recurrent` or `convolution`; `conv` is accepted for the latter.
    public init?(argument: String) {
        self.init(rawValue: argument == "conv" ? "convolution" : argument)
    }
}
