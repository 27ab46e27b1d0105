import S4Core

/// Turns a stream of samples into one `DetectionEvent` per spoken command, for a model with a
/// streaming head: the network runs once over the whole stream from one `RecurrentState`, never
/// reset, and its head gives posteriors every frame, which `FrameEventRule` turns into events.
/// Memory is fixed at creation; a file, a pipe and a live device delivering the same samples in
/// any chunking give the same events. Not thread-safe: one detector per stream.
final class StreamingDetector {
    private(set) var model: S4Model
    let sampleRate: Double
    let configuration: DetectorConfiguration
    private var network: RecurrentNetwork
    private var state: RecurrentState
    private var rule: FrameEventRule
    /// A model waiting for the word in progress to be decided and released.
    private var nextModel: S4Model?
    /// The stream time at which the current state started (a swapped-in model starts afresh),
    /// and the frames completed since.
    private var origin = 0.0
    private var frames = 0
    private(set) var sampleCount = 0

    init(model: S4Model, sampleRate: Double, configuration: DetectorConfiguration) {
        precondition(model.metadata.headPooling == .frame, "a streaming detector needs a streaming head")
        self.model = model
        self.sampleRate = sampleRate
        self.configuration = configuration
        (network, state, rule) = Self.parts(model, sampleRate: sampleRate, configuration: configuration)
    }

    private static func parts(_ model: S4Model, sampleRate: Double, configuration: DetectorConfiguration) -> (
        RecurrentNetwork, RecurrentState, FrameEventRule
    ) {
        let network = RecurrentNetwork(model: model, sampleRate: sampleRate)
        let rule = FrameEventRule(
            labels: model.labels, frameSeconds: model.metadata.pooling!.frameSeconds,
            threshold: configuration.threshold(for: model), configuration: configuration)
        return (network, network.makeState(chunkCapacity: 1024), rule)
    }

    /// Whether a word may be in progress (a swap waits for it).
    var isDeciding: Bool { rule.isActive }

    /// Swaps in another model (a SIGHUP reload): between words at once, else once the word in
    /// progress is decided and released. The new model starts from a zero state; event times
    /// carry on.
    func replaceModel(_ next: S4Model) {
        nextModel = next
        if !isDeciding { takeNextModel() }
    }

    private func takeNextModel() {
        guard let next = nextModel else { return }
        nextModel = nil
        model = next
        (network, state, rule) = Self.parts(next, sampleRate: sampleRate, configuration: configuration)
        origin = Double(sampleCount) / sampleRate
        frames = 0
    }

    func process(_ samples: UnsafeBufferPointer<Float>) -> [DetectionEvent] {
        var events: [DetectionEvent] = []
        // In pieces, so that a model waiting for a word to end takes over right after it.
        var offset = 0
        while offset < samples.count {
            let frameSeconds = model.metadata.pooling!.frameSeconds
            let piece = UnsafeBufferPointer(rebasing: samples[offset..<min(samples.count, offset + 1024)])
            network.stream(piece, state: state) { logits in
                frames += 1
                let time = origin + Double(frames) * frameSeconds
                if let event = rule.add(Classification.softmax(Array(logits)), time: time) { events.append(event) }
            }
            offset += piece.count
            sampleCount += piece.count
            if nextModel != nil && !isDeciding { takeNextModel() }
        }
        return events
    }

    /// End of stream: a word still undecided is decided.
    func finish() -> [DetectionEvent] {
        rule.finish(at: Double(sampleCount) / sampleRate).map { [$0] } ?? []
    }
}
