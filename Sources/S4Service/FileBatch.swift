import Dispatch
import Foundation
import S4Audio
import S4Core
import S4Detection

/// The batch engine of `classify`: one JSON line per audio file. A clip (up to 1.5 windows of the
/// model's clip length) is classified in windows from a zero state; a longer file is streamed
/// through the same `DetectionLoop` as `listen`, so memory does not grow with the file. One
/// classifier per sampling rate, made once and shared by the threads.
public final class FileBatch: @unchecked Sendable {
    public let model: S4Model
    public let mode: InferenceMode
    public let detectorConfiguration: DetectorConfiguration
    private let lock = NSLock()
    private var classifiers: [Int: Classifier] = [:]

    public init(model: S4Model, mode: InferenceMode, detectorConfiguration: DetectorConfiguration) {
        self.model = model
        self.mode = mode
        self.detectorConfiguration = detectorConfiguration
    }

    /// Classifies `files` on `jobs` threads and hands each line to `output` in the order of the
    /// files, as soon as it and every line before it are ready. A file that cannot be read gives an
    /// `"error"` line and a call of `failed`; `output` returning false (a closed pipe) stops the
    /// batch; `progress` gets the lines printed so far and the total after each line. Returns the
    /// number of files that failed; rethrows the first error of `output`.
    public func run(
        _ files: [String], jobs: Int, output: @escaping @Sendable (String) throws -> Bool,
        failed: @Sendable (String, Error) -> Void,
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> Int {
        let printer = InOrder(output: output, progress: progress, count: files.count)
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: min(max(jobs, 1), files.count)) { worker in
            for index in stride(from: worker, to: files.count, by: max(jobs, 1)) where !printer.isClosed {
                let line: String
                do {
                    line = try classify(files[index])
                } catch {
                    failed(files[index], error)
                    failures.increment()
                    line = JSONLine.object([("file", .string(files[index])), ("error", .string("\(error)"))]).text
                }
                printer.finish(index, line: line)
            }
        }
        if let failure = printer.failure { throw failure }
        return failures.value
    }

    /// The JSON line of one file.
    public func classify(_ file: String) throws -> String {
        let reader = try SoundFileReader(path: file)
        let rate = reader.sampleRate
        let window = model.windowLength(forSampleRate: Double(rate))
        // Read at most 1.5 windows first: a clip ends there; a longer file is streamed through
        // the detector block by block.
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
            var events: [DetectionEvent] = []
            let loop = DetectionLoop(detector: detector, blockSize: 8192) {
                events.append($0); return true
            }
            _ = try loop.feed(head)
            _ = try loop.run(source: reader)
            seconds = Double(detector.sampleCount) / Double(rate)
            let best = events.max { $0.score < $1.score }
            let formatter = EventFormatter(source: file, sampleRate: rate)
            fields += [
                ("label", best.map { .string($0.label) } ?? .raw("null")),
                ("score", best.map { .number(Double($0.score)) } ?? .raw("null")),
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

    /// The window whose best label is a command (not `_unknown_`/`_silence_`) with the highest
    /// score; if no window holds a command, the most confident window.
    static func mostConfidentCommand(_ windows: [Classification]) -> Classification {
        let commands = windows.filter { Vocabulary.isCommand($0.label) }
        let pool = commands.isEmpty ? windows : commands
        return pool.max { $0.score < $1.score }!
    }
}

/// Lines handed on in index order as they become ready.
private final class InOrder: @unchecked Sendable {
    private let lock = NSLock()
    private let output: @Sendable (String) throws -> Bool
    private let progress: (@Sendable (Int, Int) -> Void)?
    private let count: Int
    private var ready: [Int: String] = [:]
    private var next = 0
    private var closed = false
    /// The output failed: nothing more is handed on, and the batch ends with this error.
    private(set) var failure: Error?

    init(output: @escaping @Sendable (String) throws -> Bool, progress: (@Sendable (Int, Int) -> Void)?, count: Int) {
        self.output = output
        self.progress = progress
        self.count = count
    }

    /// The output is closed (or failed): the remaining files are not classified.
    var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }

    func finish(_ index: Int, line: String) {
        lock.lock()
        defer { lock.unlock() }
        ready[index] = line
        while !closed, let line = ready.removeValue(forKey: next) {
            do {
                closed = try !output(line)
            } catch {
                failure = error
                closed = true
            }
            next += 1
        }
        progress?(next, count)
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    func increment() {
        lock.lock()
        count += 1
        lock.unlock()
    }
}
