import S4Core

/// Turns a stream of samples into one `DetectionEvent` per spoken command, whatever the model's
/// head: a streaming head runs continuously (`StreamingDetector`), a clip head in windows placed
/// by an energy gate (`WindowedDetector`). A reload may bring a model with the other kind of head:
/// the old detector hears the word in progress to its end, then the new one takes over and
/// continues the stream's clock. Not thread-safe: one detector per stream.
public final class KeywordDetector {
    public let sampleRate: Double
    public let configuration: DetectorConfiguration

    private enum Engine {
        case windows(WindowedDetector)
        case frames(StreamingDetector)
    }
    private var engine: Engine
    /// Samples consumed by detectors replaced for another kind of head: the current one's clock
    /// starts there.
    private var offset = 0
    /// A model with the other kind of head, waiting for the word in progress.
    private var pendingModel: S4Model?

    public init(model: S4Model, sampleRate: Double, configuration: DetectorConfiguration = DetectorConfiguration()) {
        self.sampleRate = sampleRate
        self.configuration = configuration
        engine = Self.engine(model, sampleRate: sampleRate, configuration: configuration)
    }

    private static func engine(_ model: S4Model, sampleRate: Double, configuration: DetectorConfiguration) -> Engine {
        switch model.metadata.headPooling {
        case .mean: .windows(WindowedDetector(model: model, sampleRate: sampleRate, configuration: configuration))
        case .frame: .frames(StreamingDetector(model: model, sampleRate: sampleRate, configuration: configuration))
        }
    }

    public var model: S4Model {
        switch engine {
        case .windows(let detector): detector.model
        case .frames(let detector): detector.model
        }
    }

    /// Samples consumed so far.
    public var sampleCount: Int {
        switch engine {
        case .windows(let detector): offset + detector.sampleCount
        case .frames(let detector): offset + detector.sampleCount
        }
    }

    /// Whether a word is being decided.
    public var isDeciding: Bool {
        switch engine {
        case .windows(let detector): detector.isDeciding
        case .frames(let detector): detector.isDeciding
        }
    }

    /// No word in progress, nor sound that may become one: where a detector of the other kind
    /// may take over.
    private var isQuiet: Bool {
        switch engine {
        case .windows(let detector): detector.isQuiet
        case .frames(let detector): !detector.isDeciding
        }
    }

    /// Swaps in another model (what a SIGHUP reload does); the word in progress is decided by the
    /// model that heard it begin.
    public func replaceModel(_ next: S4Model) {
        switch (engine, next.metadata.headPooling) {
        case (.windows(let detector), .mean):
            pendingModel = nil
            detector.replaceModel(next)
        case (.frames(let detector), .frame):
            pendingModel = nil
            detector.replaceModel(next)
        default:
            pendingModel = next
            changeEngineIfIdle()
        }
    }

    /// Takes the pending model once no word is in progress: a detector of its kind, on the
    /// stream's clock.
    private func changeEngineIfIdle() {
        guard let next = pendingModel, isQuiet else { return }
        pendingModel = nil
        offset = sampleCount
        engine = Self.engine(next, sampleRate: sampleRate, configuration: configuration)
    }

    /// Feeds samples (any number); returns the events decided by them.
    public func process(_ samples: UnsafeBufferPointer<Float>) -> [DetectionEvent] {
        // With a model pending, in pieces, so that it takes over right after the word.
        let pieceLength = pendingModel == nil ? max(1, samples.count) : 1024
        var events: [DetectionEvent] = []
        var start = 0
        while start < samples.count {
            let piece = UnsafeBufferPointer(rebasing: samples[start..<min(samples.count, start + pieceLength)])
            switch engine {
            case .windows(let detector): events += shifted(detector.process(piece))
            case .frames(let detector): events += shifted(detector.process(piece))
            }
            start += piece.count
            changeEngineIfIdle()
        }
        return events
    }

    public func process(_ samples: [Float]) -> [DetectionEvent] {
        samples.withUnsafeBufferPointer { process($0) }
    }

    /// End of stream: the word in progress is decided.
    public func finish() -> [DetectionEvent] {
        switch engine {
        case .windows(let detector): shifted(detector.finish())
        case .frames(let detector): shifted(detector.finish())
        }
    }

    /// Events of the current detector in the stream's time.
    private func shifted(_ events: [DetectionEvent]) -> [DetectionEvent] {
        guard offset > 0 else { return events }
        let seconds = Double(offset) / sampleRate
        return events.map {
            DetectionEvent(
                label: $0.label, score: $0.score, start: $0.start + seconds, end: $0.end + seconds,
                decidedAt: $0.decidedAt + seconds, scores: $0.scores)
        }
    }
}
