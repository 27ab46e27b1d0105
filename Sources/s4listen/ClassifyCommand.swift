import ArgumentParser
import Dispatch
import Foundation
import Logging
import S4Audio
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

    @Option(help: "A file of audio file paths, one a line (- for standard input); blank lines are ignored. Default: $S4LISTEN_FILES_FROM.")
    var filesFrom: String?

    @Option(help: "K/N: classify only part K of N of the files (K from 1; the file at position i, from 0, is in part i mod N + 1). Default: $S4LISTEN_SHARD.")
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
        let (model, path) = try modelOptions.load()
        logger.debug("model loaded", metadata: ["path": "\(path)", "parameters": "\(model.parameterCount)"])
        if model.metadata.isUntrained {
            logger.warning("model \(path) is untrained (random weights): its labels are meaningless")
        }
        var detectorConfiguration = DetectorConfiguration()
        detectorConfiguration.threshold = thresholdOption.threshold
        let batch = FileBatch(model: model, mode: mode, detectorConfiguration: detectorConfiguration, count: files.count,
                              progress: isatty(STDERR_FILENO) == 1 && files.count > 1)
        DispatchQueue.concurrentPerform(iterations: min(jobs, files.count)) { worker in
            for index in stride(from: worker, to: files.count, by: jobs) where !batch.outputClosed {
                let line: String
                do {
                    line = try batch.classify(files[index])
                } catch {
                    logger.error("\(error)")
                    batch.recordFailure()
                    line = JSONLine.object([("file", .string(files[index])), ("error", .string("\(error)"))]).text
                }
                batch.finish(index, line: line)
            }
        }
        if let failure = batch.outputFailure { throw failure }
        if batch.failures > 0 { throw ExitCode(1) }
    }
}

/// The shared state of a `classify` run: one classifier per sampling rate, made once; results
/// printed in the order of the files as they become ready; a progress bar on a terminal.
private final class FileBatch: @unchecked Sendable {
    let model: S4Model
    let mode: InferenceMode
    let detectorConfiguration: DetectorConfiguration
    private let lock = NSLock()
    private var classifiers: [Int: Classifier] = [:]
    private var ready: [Int: String] = [:]
    private var nextToPrint = 0
    private let count: Int
    private let progress: Bool
    private(set) var failures = 0
    /// Standard output failed: nothing more is printed, and the run ends with this error.
    private(set) var outputFailure: OutputError?
    /// Standard output is a closed pipe (or failed): the remaining files are not classified.
    var outputClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }
    private var closed = false

    init(model: S4Model, mode: InferenceMode, detectorConfiguration: DetectorConfiguration, count: Int, progress: Bool) {
        self.model = model; self.mode = mode; self.detectorConfiguration = detectorConfiguration; self.count = count; self.progress = progress
    }

    func classify(_ file: String) throws -> String {
        let reader = try SoundFileReader(path: file)
        let rate = reader.sampleRate
        let window = model.windowLength(forSampleRate: Double(rate))
        // Read at most 1.5 windows first: a clip ends there; a longer file is streamed through
        // the detector block by block, so memory does not grow with the file.
        let head = try reader.readAll(limit: window * 3 / 2 + 1)
        var fields: [(String, JSONLine)] = [("file", .string(file))]
        let seconds: Double
        if head.count <= window * 3 / 2 {
            seconds = Double(head.count) / Double(rate)
            let windows = classifier(rate: rate).classify(head)
            let best = Self.mostConfidentCommand(windows)
            fields += [
                ("label", .string(best.label)),
                ("score", .number(Double(best.score))),
                ("scores", .object(zip(best.labels, best.probabilities).map { ($0, .number(Double($1))) })),
                ("start", .number(best.start)),
                ("end", .number(best.end)),
                ("windows", .integer(windows.count)),
                ("mode", .string(mode.rawValue)),
            ]
        } else {
            let detector = KeywordDetector(model: model, sampleRate: Double(rate), configuration: detectorConfiguration)
            var events = detector.process(head)
            var block = [Float](repeating: 0, count: 8192)
            while case let count = try block.withUnsafeMutableBufferPointer({ buffer throws(AudioSourceError) in try reader.read(into: buffer) }),
                  count > 0 {
                events += block.withUnsafeBufferPointer { detector.process(UnsafeBufferPointer(rebasing: $0[0..<count])) }
            }
            events += detector.finish()
            seconds = Double(detector.sampleCount) / Double(rate)
            let best = events.max { $0.score < $1.score }
            let formatter = EventFormatter(source: file, sampleRate: rate)
            fields += [
                ("label", best.map { .string($0.label) } ?? .raw("null")),
                ("score", .number(Double(best?.score ?? 0))),
                ("detections", .array(events.map { .raw(formatter.detection($0)) })),
                ("mode", .string(InferenceMode.recurrent.rawValue)),
            ]
        }
        fields += [("sample_rate", .integer(rate)), ("seconds", .number(seconds))]
        return JSONLine.object(fields).text
    }

    private func classifier(rate: Int) -> Classifier {
        lock.lock()
        defer { lock.unlock() }
        if let existing = classifiers[rate] { return existing }
        let made = Classifier(model: model, sampleRate: Double(rate), mode: mode)
        classifiers[rate] = made
        return made
    }

    func recordFailure() {
        lock.lock()
        failures += 1
        lock.unlock()
    }

    /// Prints every result that is next in file order.
    func finish(_ index: Int, line: String) {
        lock.lock()
        defer { lock.unlock() }
        ready[index] = line
        while !closed, let next = ready.removeValue(forKey: nextToPrint) {
            do {
                closed = try !JSONLine.raw(next).emit()
            } catch {
                outputFailure = error
                closed = true
            }
            nextToPrint += 1
        }
        if progress {
            let done = nextToPrint, width = 30
            let filled = width * done / max(count, 1)
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(count) files\(done == count ? "\n" : "")".utf8))
        }
    }

    /// The window whose best label is a command (not `_unknown_`/`_silence_`) with the highest
    /// score; if no window holds a command, the most confident window.
    static func mostConfidentCommand(_ windows: [Classification]) -> Classification {
        let commands = windows.filter { !$0.label.hasPrefix("_") }
        let pool = commands.isEmpty ? windows : commands
        return pool.max { $0.score < $1.score }!
    }
}

extension InferenceMode: ExpressibleByArgument {
    /// `recurrent` or `convolution`; `conv` is accepted for the latter.
    public init?(argument: String) {
        self.init(rawValue: argument == "conv" ? "convolution" : argument)
    }
}
