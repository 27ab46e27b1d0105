import S4Audio
import S4Detection

/// The one path from samples to events: a source read block by block into a detector, each event
/// handed to a sink as it is decided. `listen` runs it on its capture thread; `classify` runs it
/// over a file longer than a clip.
public final class DetectionLoop {
    /// Why `run` returned.
    public enum Ending: Sendable, Equatable {
        /// The source ended (or the sample limit was reached); the last utterance was decided.
        case endOfInput
        /// The sink refused an event (its reader is gone).
        case sinkClosed
        /// `shouldStop` said so; the utterance in progress is not decided yet (see `finish`).
        case stopped
    }

    public let detector: KeywordDetector
    /// Takes one event; false when it can take no more.
    private let sink: (DetectionEvent) throws -> Bool
    private var block: [Float]

    public init(detector: KeywordDetector, blockSize: Int = 4096, sink: @escaping (DetectionEvent) throws -> Bool) {
        self.detector = detector
        self.sink = sink
        block = [Float](repeating: 0, count: blockSize)
    }

    /// Feeds samples to the detector; false once the sink refused an event.
    public func feed(_ samples: UnsafeBufferPointer<Float>) throws -> Bool {
        try deliver(detector.process(samples))
    }

    public func feed(_ samples: [Float]) throws -> Bool {
        try samples.withUnsafeBufferPointer { try feed($0) }
    }

    /// Decides the utterance in progress (the input ended, or the run was stopped).
    public func finish() throws -> Bool {
        try deliver(detector.finish())
    }

    /// Reads `source` until it ends, `sampleLimit` samples have been read (the input is treated as
    /// ending there), the sink refuses an event, or `shouldStop` is true before a read.
    /// `beforeRead` runs before every read (a model swap, a watchdog ping, an overrun report).
    public func run(
        source: AudioSource, sampleLimit: Int? = nil, shouldStop: () -> Bool = { false },
        beforeRead: () -> Void = {}
    ) throws -> Ending {
        var samplesRead = 0
        while !shouldStop() {
            beforeRead()
            var count = try block.withUnsafeMutableBufferPointer { buffer throws(AudioSourceError) in
                try source.read(into: buffer)
            }
            if let sampleLimit { count = min(count, max(0, sampleLimit - samplesRead)) }
            samplesRead += count
            if count == 0 { return try finish() ? .endOfInput : .sinkClosed }
            let open = try block.withUnsafeBufferPointer { try feed(UnsafeBufferPointer(rebasing: $0[0..<count])) }
            if !open { return .sinkClosed }
        }
        return .stopped
    }

    private func deliver(_ events: [DetectionEvent]) throws -> Bool {
        for event in events where try !sink(event) { return false }
        return true
    }
}
