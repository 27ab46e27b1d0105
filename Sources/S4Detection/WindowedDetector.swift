import S4Core

/// Turns a stream of samples into one `DetectionEvent` per spoken command, for a model with a
/// clip head (`KeywordDetector` picks it by the model's head).
///
/// The model was trained on one-second windows starting from a zero state, so each utterance
/// found by the energy gate is classified in windows of exactly that length, each from a fresh
/// `RecurrentState`, starting `windowLeads` before the onset (the samples before the onset come
/// from a fixed ring). Their probabilities are averaged; a command at or above the threshold is an
/// event. An onset while an utterance is still being decided cuts that utterance's windows short
/// there: their rest is zeros (as short clips were padded in training) and it is decided at once.
/// So a click just before a word does not hide the word, and no window holds two utterances: one
/// word gives one event. A sound that runs into the word (a breath, a noisy room, the louder
/// room of a recording) can open the utterance too early for its windows to hold the word: when
/// they are not sure of a command and the loudest frame came late, the utterance gets a second
/// look with windows placed by that frame, and the look surer of a command is the decision.
///
/// Everything happens frame by frame at fixed sample positions, so a file, a pipe and a live
/// device delivering the same samples in any chunking give the same events. Memory is fixed at
/// creation. Not thread-safe: one detector per stream.
final class WindowedDetector {
    private(set) var model: S4Model
    let sampleRate: Double
    let configuration: DetectorConfiguration
    private var windows: Windows
    /// A model waiting for the utterance in progress to be decided.
    private var nextModel: S4Model?
    private var gate: EnergyGate
    private var history: SampleHistory
    private var frame: [Float]
    private var frameFill = 0

    /// What depends on the model: its network at this rate, the window length, where the windows
    /// start before an onset, and one recurrent state per window.
    private struct Windows {
        let network: RecurrentNetwork
        let length: Int
        let leads: [Int]
        let states: [RecurrentState]

        init(model: S4Model, sampleRate: Double, configuration: DetectorConfiguration, frameLength: Int) {
            let network = RecurrentNetwork(model: model, sampleRate: sampleRate)
            // Leads suit one-second clips; a model trained on shorter clips gets them scaled down
            // so the word still falls inside its windows.
            let longestLead = 0.4 * model.metadata.clipSeconds
            leads = configuration.windowLeads.map { Int((min($0, longestLead) * sampleRate).rounded()) }
            states = leads.map { _ in network.makeState(chunkCapacity: frameLength) }
            length = model.windowLength(forSampleRate: sampleRate)
            self.network = network
        }
    }

    /// The utterance being classified, if any.
    private struct Utterance {
        let onset: Int
        var offset: Int?
        /// Absolute start sample of each window.
        let starts: [Int]
        var probabilities: [[Float]?]
        /// The loudest frame while the gate was open: its start sample and level (dB).
        var peak: (start: Int, level: Double)
        /// During a second look: the first look's onset and mean probabilities.
        let firstLook: Look?
    }

    /// One look's verdict on an utterance: its windows' mean probabilities.
    private struct Look {
        let onset: Int
        let probabilities: [Float]
    }
    private var utterance: Utterance?

    init(model: S4Model, sampleRate: Double, configuration: DetectorConfiguration = DetectorConfiguration()) {
        self.model = model
        self.sampleRate = sampleRate
        self.configuration = configuration
        gate = EnergyGate(configuration: configuration, sampleRate: sampleRate)
        let frameLength = gate.frameLength
        frame = Array(repeating: 0, count: frameLength)
        windows = Windows(model: model, sampleRate: sampleRate, configuration: configuration, frameLength: frameLength)
        // Sized for the longest configured lead whatever the model, so a model swapped in later
        // never needs more; and for a second look, which reaches back from the first look's
        // decision (a window after its onset, less the shortest lead) to the loudest frame, then
        // `peakLag` and the longest lead before it: at most a window, `peakLag` and a lead.
        let longestLead = Int(((configuration.windowLeads.max() ?? 0) * sampleRate).rounded())
        let secondLook =
            configuration.secondLookAfter == nil
            ? 0 : windows.length + Int((configuration.peakLag * sampleRate).rounded()) + longestLead
        history = SampleHistory(capacity: max(longestLead + frameLength * (configuration.onsetFrames + 1), secondLook))
    }

    /// Swaps in another model (what a SIGHUP reload does): at once between utterances, else as
    /// soon as the utterance in progress is decided (at the latest at the next onset), so no
    /// utterance is classified by two models. The gate with its noise floor, the sample history and
    /// the sample count carry on: event times continue, and the next utterance is classified whole
    /// by the new model, even one whose onset is still being confirmed.
    func replaceModel(_ next: S4Model) {
        nextModel = next
        if !isDeciding { takeNextModel() }
    }

    private func takeNextModel() {
        guard let next = nextModel else { return }
        nextModel = nil
        model = next
        windows = Windows(model: next, sampleRate: sampleRate, configuration: configuration, frameLength: frame.count)
    }

    /// Whether an utterance is being classified (its windows are still filling).
    var isDeciding: Bool { utterance != nil }

    /// Whether nothing is being heard: no utterance being classified and the gate closed.
    var isQuiet: Bool { utterance == nil && !gate.isActive }

    /// Samples consumed so far.
    var sampleCount: Int { history.end + frameFill }

    /// Feeds samples (any number); returns the events decided by them.
    func process(_ samples: UnsafeBufferPointer<Float>) -> [DetectionEvent] {
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

    func process(_ samples: [Float]) -> [DetectionEvent] {
        samples.withUnsafeBufferPointer { process($0) }
    }

    /// End of stream: the partial frame and any unfinished windows are completed with zeros (as
    /// short clips were padded in training) and decided.
    func finish() -> [DetectionEvent] {
        guard utterance != nil else { return [] }
        let end = sampleCount
        // The end of the word is where the trailing quiet began, if the gate has seen it start.
        if utterance?.offset == nil { utterance?.offset = gate.quietRunStart ?? end }
        var events: [DetectionEvent] = []
        let silence = [Float](repeating: 0, count: frame.count)
        while utterance != nil {
            events += process(Array(silence.prefix(frame.count - frameFill)))
        }
        return events
    }

    private func processFrame() -> [DetectionEvent] {
        let start = history.end
        frame.withUnsafeBufferPointer { history.append($0) }
        let transition = frame.withUnsafeBufferPointer { gate.update(frame: $0, start: start) }
        var events: [DetectionEvent] = []
        switch transition {
        case .onset(let onset):
            if let cut = utterance.flatMap(cutShort) { events.append(cut) }
            startUtterance(onset: onset)
        case .offset(let offset):
            if utterance != nil, utterance?.offset == nil { utterance?.offset = offset }
        default:
            break
        }
        if gate.isActive, let peak = utterance?.peak, gate.level > peak.level {
            utterance?.peak = (start, gate.level)
        }
        if let event = feedWindows(frameStart: start) { events.append(event) }
        return events
    }

    /// Completes the windows of the utterance in progress with zeros and decides it: a new
    /// utterance has begun. (Its windows already hold the new utterance's first frames but one:
    /// the gate confirms an onset after `onsetFrames` loud frames.)
    private func cutShort(_ current: Utterance) -> DetectionEvent? {
        var current = current
        let zeros = [Float](repeating: 0, count: frame.count)
        for (i, state) in windows.states.enumerated() where current.probabilities[i] == nil {
            while state.sampleCount < windows.length {
                let count = min(zeros.count, windows.length - state.sampleCount)
                zeros.withUnsafeBufferPointer {
                    windows.network.process(UnsafeBufferPointer(rebasing: $0[0..<count]), state: state)
                }
            }
            current.probabilities[i] = Classification.softmax(windows.network.logits(state))
        }
        return conclude(current, decidedAt: history.end, mayLookAgain: false)
    }

    private func startUtterance(onset: Int, offset: Int? = nil, firstLook: Look? = nil) {
        let starts = windows.leads.map { max(history.oldest, onset - $0) }
        utterance = Utterance(
            onset: onset, offset: offset, starts: starts, probabilities: starts.map { _ in nil },
            peak: (onset, -.infinity), firstLook: firstLook)
        for (state, windowStart) in zip(windows.states, starts) {
            state.reset()
            // Catch the window up to the current frame from the history ring.
            history.forEachPiece(from: windowStart, to: windowStart + windows.length) {
                windows.network.process($0, state: state)
            }
        }
    }

    /// Feeds the newest frame to the windows that need it; decides the utterance when all are full.
    private func feedWindows(frameStart: Int) -> DetectionEvent? {
        guard var current = utterance else { return nil }
        let frameEnd = history.end
        let windowLength = windows.length, network = windows.network
        for (i, state) in windows.states.enumerated() where current.probabilities[i] == nil {
            let windowStart = current.starts[i]
            // A window that started inside this frame was already caught up to its end.
            if windowStart < frameStart, state.sampleCount < windowLength {
                let from = max(frameStart, windowStart + state.sampleCount)
                let count = min(frameEnd - from, windowLength - state.sampleCount)
                if count > 0 {
                    frame.withUnsafeBufferPointer { all in
                        network.process(
                            UnsafeBufferPointer(rebasing: all[(from - frameStart)..<(from - frameStart + count)]), state: state)
                    }
                }
            }
            if state.sampleCount >= windowLength {
                current.probabilities[i] = Classification.softmax(network.logits(state))
            }
        }
        utterance = current
        guard current.probabilities.allSatisfy({ $0 != nil }) else { return nil }
        return conclude(current, decidedAt: frameEnd, mayLookAgain: true)
    }

    /// Ends the utterance in progress with its decision, or starts its second look (not when a new
    /// onset is cutting it short: that utterance takes over). A model waiting for the decision
    /// takes over after it, so both looks are by the same model.
    private func conclude(_ decided: Utterance, decidedAt: Int, mayLookAgain: Bool) -> DetectionEvent? {
        utterance = nil
        let outputs = decided.probabilities.compactMap { $0 }
        let mean = (0..<model.labels.count).map { k in outputs.reduce(Float(0)) { $0 + $1[k] } / Float(outputs.count) }
        let look = Look(onset: decided.onset, probabilities: mean)
        if mayLookAgain, decided.firstLook == nil, commandScore(look) < configuration.secondLookBelow,
            let after = configuration.secondLookAfter,
            decided.peak.start - decided.onset >= Int((after * sampleRate).rounded())
        {
            let wordStart = decided.peak.start - Int((configuration.peakLag * sampleRate).rounded())
            startUtterance(onset: wordStart, offset: decided.offset, firstLook: look)
            return nil
        }
        var chosen = look
        if let first = decided.firstLook, commandScore(first) > commandScore(look) { chosen = first }
        let event = decide(chosen, offset: decided.offset, decidedAt: decidedAt)
        takeNextModel()
        return event
    }

    /// The probability of a look's likeliest command: how sure it is that it heard one.
    private func commandScore(_ look: Look) -> Float {
        zip(model.labels, look.probabilities).filter { Vocabulary.isCommand($0.0) }.map(\.1).max() ?? 0
    }

    /// The event to report, if any.
    private func decide(_ look: Look, offset: Int?, decidedAt: Int) -> DetectionEvent? {
        let end = offset ?? gate.quietRunStart ?? decidedAt
        let ranked = zip(model.labels, look.probabilities).sorted { $0.1 > $1.1 }.map { (label: $0.0, probability: $0.1) }
        let best = ranked[0]
        let isCommand = Vocabulary.isCommand(best.label) && best.probability >= configuration.threshold(for: model)
        guard isCommand || configuration.reportEverything else { return nil }
        return DetectionEvent(
            label: best.label, score: best.probability, start: Double(look.onset) / sampleRate,
            end: Double(end) / sampleRate, decidedAt: Double(decidedAt) / sampleRate, scores: ranked)
    }
}
