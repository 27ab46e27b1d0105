import S4Core

/// Turns a stream of samples into one `DetectionEvent` per spoken command.
///
/// The model was trained on one-second windows starting from a zero state, so each utterance
/// found by the energy gate is classified in windows of exactly that length, each from a fresh
/// `RecurrentState`, starting `windowLeads` before the onset (the samples before the onset come
/// from a fixed ring). Their probabilities are averaged; a command at or above the threshold is an
/// event. Up to `overlappingUtterances` are decided at once, so a click or a cough just before a
/// word does not keep the word out while its own windows fill; onsets are ignored for
/// `refractorySeconds` after an utterance ends, so one word gives one event.
///
/// Everything happens frame by frame at fixed sample positions, so a file, a pipe and a live
/// device delivering the same samples in any chunking give the same events. Memory is fixed at
/// creation. Not thread-safe: one detector per stream.
public final class KeywordDetector {
    public private(set) var model: S4Model
    public let sampleRate: Double
    public let configuration: DetectorConfiguration
    private var windows: Windows
    private var gate: EnergyGate
    private var history: SampleHistory
    private var frame: [Float]
    private var frameFill = 0

    /// What depends on the model: its network at this rate, the window length, where the windows
    /// start before an onset, and one recurrent state per window of each utterance slot.
    private struct Windows {
        let network: RecurrentNetwork
        let length: Int
        let leads: [Int]
        /// [slot][window]
        let states: [[RecurrentState]]

        init(model: S4Model, sampleRate: Double, configuration: DetectorConfiguration, frameLength: Int) {
            let network = RecurrentNetwork(model: model, sampleRate: sampleRate)
            // Leads suit one-second clips; a model trained on shorter clips gets them scaled down
            // so the word still falls inside its windows.
            let longestLead = 0.4 * model.metadata.clipSeconds
            let leads = configuration.windowLeads.map { Int((min($0, longestLead) * sampleRate).rounded()) }
            states = (0..<max(1, configuration.overlappingUtterances)).map { _ in
                leads.map { _ in network.makeState(chunkCapacity: frameLength) }
            }
            self.leads = leads
            length = model.windowLength(forSampleRate: sampleRate)
            self.network = network
        }
    }

    /// An utterance being classified.
    private struct Utterance {
        /// Which of `Windows.states` its windows use.
        let slot: Int
        let onset: Int
        var offset: Int?
        /// Absolute start sample of each window.
        let starts: [Int]
        var probabilities: [[Float]?]
    }
    /// In onset order; only the last can still be without an offset.
    private var utterances: [Utterance] = []
    /// No onset is accepted before this sample.
    private var quietUntil = 0

    public init(model: S4Model, sampleRate: Double, configuration: DetectorConfiguration = DetectorConfiguration()) {
        self.model = model
        self.sampleRate = sampleRate
        self.configuration = configuration
        gate = EnergyGate(configuration: configuration, sampleRate: sampleRate)
        let frameLength = gate.frameLength
        frame = Array(repeating: 0, count: frameLength)
        windows = Windows(model: model, sampleRate: sampleRate, configuration: configuration, frameLength: frameLength)
        utterances.reserveCapacity(windows.states.count)
        // Sized for the longest configured lead whatever the model, so a model swapped in later
        // never needs more.
        let longestLead = Int(((configuration.windowLeads.max() ?? 0) * sampleRate).rounded())
        history = SampleHistory(capacity: longestLead + frameLength * (configuration.onsetFrames + 1))
    }

    /// Swaps in another model between utterances (what a SIGHUP reload does). The gate with its
    /// noise floor, the sample history and the sample count carry on: event times continue, and
    /// the next utterance is classified whole by the new model, even one whose onset is still
    /// being confirmed.
    public func replaceModel(_ next: S4Model) {
        precondition(!isDeciding, "the model is replaced only between utterances")
        model = next
        windows = Windows(model: next, sampleRate: sampleRate, configuration: configuration, frameLength: frame.count)
    }

    /// Whether an utterance is being classified (its windows are still filling).
    public var isDeciding: Bool { !utterances.isEmpty }

    /// Samples consumed so far.
    public var sampleCount: Int { history.end + frameFill }

    /// Feeds samples (any number); returns the events decided by them.
    public func process(_ samples: UnsafeBufferPointer<Float>) -> [DetectionEvent] {
        var events: [DetectionEvent] = []
        var index = 0
        while index < samples.count {
            let take = min(frame.count - frameFill, samples.count - index)
            for k in 0..<take { frame[frameFill + k] = samples[index + k] }
            frameFill += take
            index += take
            if frameFill == frame.count {
                frameFill = 0
                events += processFrame()
            }
        }
        return events
    }

    public func process(_ samples: [Float]) -> [DetectionEvent] {
        samples.withUnsafeBufferPointer { process($0) }
    }

    /// End of stream: the partial frame and any unfinished windows are completed with zeros (as
    /// short clips were padded in training) and decided.
    public func finish() -> [DetectionEvent] {
        guard let last = utterances.indices.last else { return [] }
        // The end of the word is where the trailing quiet began, if the gate has seen it start.
        if utterances[last].offset == nil { utterances[last].offset = gate.quietRunStart ?? sampleCount }
        var events: [DetectionEvent] = []
        let silence = [Float](repeating: 0, count: frame.count)
        while !utterances.isEmpty {
            events += process(Array(silence.prefix(frame.count - frameFill)))
        }
        return events
    }

    private func processFrame() -> [DetectionEvent] {
        let start = history.end
        frame.withUnsafeBufferPointer { history.append($0) }
        let transition = frame.withUnsafeBufferPointer { gate.update(frame: $0, start: start) }
        switch transition {
        case .onset(let onset) where onset >= quietUntil:
            // With every slot busy the onset is let go, as a detector deciding one word at a time would.
            if let slot = windows.states.indices.first(where: { slot in !utterances.contains { $0.slot == slot } }) {
                startUtterance(onset: onset, slot: slot)
            }
        case .offset(let offset):
            if let last = utterances.indices.last, utterances[last].offset == nil { utterances[last].offset = offset }
            quietUntil = offset + Int(configuration.refractorySeconds * sampleRate)
        default:
            break
        }
        return feedWindows(frameStart: start)
    }

    private func startUtterance(onset: Int, slot: Int) {
        let starts = windows.leads.map { max(0, onset - $0) }
        utterances.append(Utterance(slot: slot, onset: onset, offset: nil, starts: starts, probabilities: starts.map { _ in nil }))
        for (state, windowStart) in zip(windows.states[slot], starts) {
            state.reset()
            // Catch the window up to the current frame from the history ring.
            history.forEachPiece(from: windowStart, to: windowStart + windows.length) { windows.network.process($0, state: state) }
        }
    }

    /// Feeds the newest frame to the windows that need it; decides each utterance whose windows
    /// are all full (in onset order: all windows have the same length).
    private func feedWindows(frameStart: Int) -> [DetectionEvent] {
        var events: [DetectionEvent] = []
        for k in utterances.indices {
            feed(&utterances[k], frameStart: frameStart)
        }
        while let first = utterances.first, first.probabilities.allSatisfy({ $0 != nil }) {
            utterances.removeFirst()
            if let event = decide(first, decidedAt: history.end) { events.append(event) }
        }
        return events
    }

    private func feed(_ current: inout Utterance, frameStart: Int) {
        let frameEnd = history.end
        let windowLength = windows.length, network = windows.network
        for (i, state) in windows.states[current.slot].enumerated() where current.probabilities[i] == nil {
            let windowStart = current.starts[i]
            // A window that started inside this frame was already caught up to its end.
            if windowStart < frameStart, state.sampleCount < windowLength {
                let from = max(frameStart, windowStart + state.sampleCount)
                let count = min(frameEnd - from, windowLength - state.sampleCount)
                if count > 0 {
                    frame.withUnsafeBufferPointer { all in
                        network.process(UnsafeBufferPointer(rebasing: all[(from - frameStart)..<(from - frameStart + count)]), state: state)
                    }
                }
            }
            if state.sampleCount >= windowLength {
                current.probabilities[i] = Classification.softmax(network.logits(state))
            }
        }
    }

    private func decide(_ decided: Utterance, decidedAt: Int) -> DetectionEvent? {
        let windows = decided.probabilities.compactMap { $0 }
        let labels = model.labels
        let mean = (0..<labels.count).map { k in windows.reduce(Float(0)) { $0 + $1[k] } / Float(windows.count) }
        let end = decided.offset ?? gate.quietRunStart ?? decidedAt
        let ranked = zip(labels, mean).sorted { $0.1 > $1.1 }.map { (label: $0.0, probability: $0.1) }
        let best = ranked[0]
        let isCommand = !best.label.hasPrefix("_") && best.probability >= configuration.threshold
        guard isCommand || configuration.reportEverything else { return nil }
        return DetectionEvent(label: best.label, score: best.probability, start: Double(decided.onset) / sampleRate,
                              end: Double(end) / sampleRate, decidedAt: Double(decidedAt) / sampleRate, scores: ranked)
    }
}
