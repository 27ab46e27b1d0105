import Foundation
import S4Core
import S4RandomModel
import Testing

@testable import S4Detection

/// The detector on synthetic scenes with a small random model, reporting every decision, so the
/// segmentation itself is what is tested: one decision per burst, at the right place, the same
/// for any chunking, and the same probabilities as classifying its windows directly.
@Suite struct KeywordDetectorTests {
    static let model: S4Model = {
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.layerCount = 2
        configuration.stateSize = 8
        return S4Model.random(configuration)
    }()

    static var everything: DetectorConfiguration {
        var configuration = DetectorConfiguration()
        configuration.reportEverything = true
        return configuration
    }

    /// Quiet noise with loud bursts (a vowel-like harmonic tone) of `length` seconds at `onsets`.
    static func scene(seconds: Double, onsets: [Double], length: Double = 0.4, rate: Double = 16000, seed: UInt64 = 1) -> [Float]
    {
        scene(seconds: seconds, bursts: onsets.map { ($0, length) }, rate: rate, seed: seed)
    }

    /// The same noise (for a seed) with bursts of their own lengths.
    static func scene(seconds: Double, bursts: [(onset: Double, length: Double)], rate: Double = 16000, seed: UInt64 = 1)
        -> [Float]
    {
        var rng = SeededGenerator(seed: seed)
        return (0..<Int(seconds * rate)).map { i in
            let t = Double(i) / rate
            var x = 0.002 * rng.normal()
            if bursts.contains(where: { t >= $0.onset && t < $0.onset + $0.length }) {
                x += 0.3 * sin(2 * .pi * 180 * t) + 0.15 * sin(2 * .pi * 540 * t) + 0.1 * sin(2 * .pi * 1260 * t)
            }
            return Float(x)
        }
    }

    static func run(
        _ samples: [Float], rate: Double = 16000, chunks: [Int] = [4096],
        configuration: DetectorConfiguration = everything
    ) -> [DetectionEvent] {
        let detector = KeywordDetector(model: model, sampleRate: rate, configuration: configuration)
        var events: [DetectionEvent] = []
        var offset = 0, k = 0
        while offset < samples.count {
            let n = min(chunks[k % chunks.count], samples.count - offset)
            events += detector.process(Array(samples[offset..<(offset + n)]))
            offset += n
            k += 1
        }
        return events + detector.finish()
    }

    /// The mean probabilities of the windows the detector places `windowLeads` before `onset`,
    /// each classified directly from a zero state; from `cut` on, a window holds zeros (a window
    /// cut short by the next onset).
    static func windowMean(
        _ model: S4Model, _ samples: [Float], onset: Int, cut: Int? = nil, mode: InferenceMode = .recurrent
    ) -> [Float] {
        let classifier = Classifier(model: model, sampleRate: 16000, mode: mode)
        let leads = everything.windowLeads
        var mean = [Float](repeating: 0, count: model.labels.count)
        for lead in leads {
            let start = onset - Int((lead * 16000).rounded())
            let end = min(start + 16000, cut ?? start + 16000)
            let window = Array(samples[start..<end]) + [Float](repeating: 0, count: 16000 - (end - start))
            let p = Classification.softmax(classifier.logits(window))
            for k in mean.indices { mean[k] += p[k] / Float(leads.count) }
        }
        return mean
    }

    /// Each of the event's scores is `mean`'s probability of its label.
    static func expectScores(_ event: DetectionEvent, _ mean: [Float], _ model: S4Model, tolerance: Float = 1e-5) {
        for (label, probability) in event.scores {
            #expect(abs(probability - mean[model.labels.firstIndex(of: label)!]) < tolerance, "\(label)")
        }
    }

    @Test func silenceAndSteadyNoiseGiveNothing() {
        #expect(Self.run(Self.scene(seconds: 5, onsets: [])).isEmpty)
        var rng = SeededGenerator(seed: 4)
        let loudNoise = (0..<80000).map { _ in Float(0.2 * rng.normal()) }
        #expect(Self.run(loudNoise).isEmpty)
    }

    @Test(arguments: [8000.0, 16000.0, 48000.0])
    func oneDecisionPerBurstInPlace(rate: Double) throws {
        let onsets = [1.0, 3.0, 5.5]
        let events = Self.run(Self.scene(seconds: 7, onsets: onsets, rate: rate), rate: rate)
        try #require(events.count == onsets.count, "\(events.map(\.start))")
        for (event, onset) in zip(events, onsets) {
            #expect(abs(event.start - onset) < 0.015, "onset \(onset) found at \(event.start)")
            // The end is the first of the quiet frames that closed the utterance.
            #expect(abs(event.end - (onset + 0.4)) < 0.015, "end \(onset + 0.4) found at \(event.end)")
            // Decided when the last window (lead 0.15 s) is full: onset − 0.15 + 1 s.
            #expect(abs(event.decidedAt - (onset + 0.85)) < 0.015)
        }
    }

    /// With a click deciding alongside the burst after it, too.
    @Test func chunkingDoesNotChangeTheEvents() {
        let samples = Self.scene(seconds: 6, bursts: [(0.8, 0.4), (2.5, 0.05), (2.9, 0.4), (4.4, 0.4)])
        let reference = Self.run(samples, chunks: [16000])
        #expect(reference.count == 4)
        for chunks in [[1], [7, 160, 33], [441], [100_000]] {
            let events = Self.run(samples, chunks: chunks)
            #expect(events == reference, "chunks \(chunks)")
            #expect(events.map { $0.scores.map(\.probability) } == reference.map { $0.scores.map(\.probability) })
        }
    }

    /// The event's probabilities are the mean over its windows, each classified from a zero state.
    @Test func probabilitiesAreThoseOfTheWindows() throws {
        let samples = Self.scene(seconds: 3, onsets: [1.2])
        let event = try #require(Self.run(samples).first)
        let onset = Int((event.start * 16000).rounded())
        let mean = Self.windowMean(Self.model, samples, onset: onset, mode: .convolution)
        Self.expectScores(event, mean, Self.model, tolerance: 1e-4)
    }

    @Test func thresholdAndNonCommandsAreFiltered() {
        var strict = DetectorConfiguration()
        strict.threshold = 1.01
        #expect(Self.run(Self.scene(seconds: 3, onsets: [1.0]), configuration: strict).isEmpty)
        // A model whose labels are all non-commands never gives an event, whatever the threshold.
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.labels = ["_unknown_", "_silence_"]
        let model = S4Model.random(configuration)
        var lenient = DetectorConfiguration()
        lenient.threshold = 0
        let detector = KeywordDetector(model: model, sampleRate: 16000, configuration: lenient)
        let scene = Self.scene(seconds: 3, onsets: [1.0])
        #expect((detector.process(scene) + detector.finish()).isEmpty)
        let reporting = KeywordDetector(model: model, sampleRate: 16000, configuration: Self.everything)
        #expect((reporting.process(scene) + reporting.finish()).count == 1)
    }

    /// A model trained on 0.25 s clips: leads shrink to 0.1 s, windows hold exactly L samples.
    @Test func shortClipModel() throws {
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.clipSeconds = 0.25
        let model = S4Model.random(configuration)
        let samples = Self.scene(seconds: 3, onsets: [1.0], length: 0.15)
        let detector = KeywordDetector(model: model, sampleRate: 16000, configuration: Self.everything)
        let events = detector.process(samples) + detector.finish()
        let event = try #require(events.first)
        #expect(events.count == 1)
        #expect(abs(event.decidedAt - (event.start - 0.1 + 0.25)) < 0.011)
        let onset = Int((event.start * 16000).rounded()), start = onset - 1600
        let classifier = Classifier(model: model, sampleRate: 16000, mode: .recurrent)
        let expected = Classification.softmax(classifier.logits(Array(samples[start..<(start + 4000)])))
        for (label, probability) in event.scores {
            #expect(abs(probability - expected[model.labels.firstIndex(of: label)!]) < 1e-5, "\(label)")
        }
    }

    /// The background jumps by ~28 dB (a tap turned on) and stays: the gate takes the new level as
    /// its floor after `maxUtteranceSeconds` instead of staying deaf while the floor creeps up at
    /// 3 dB/s, so a word 3 s later is still found.
    @Test func aLouderBackgroundDoesNotHideTheNextWord() throws {
        var rng = SeededGenerator(seed: 9)
        let rate = 16000.0
        let samples: [Float] = (0..<Int(7 * rate)).map { i in
            let t = Double(i) / rate
            var x = (t < 1 ? 0.002 : 0.05) * rng.normal()
            if t >= 4 && t < 4.4 { x += 0.3 * sin(2 * .pi * 180 * t) + 0.15 * sin(2 * .pi * 540 * t) }
            return Float(x)
        }
        let events = Self.run(samples)
        #expect(events.contains { abs($0.start - 4.0) < 0.015 }, "\(events.map(\.start))")
    }

    /// A stream that ends inside a window is decided with the window completed by zeros.
    @Test func endOfStreamCompletesTheWindow() throws {
        let events = Self.run(Self.scene(seconds: 1.5, onsets: [1.0]))
        let event = try #require(events.first)
        #expect(events.count == 1)
        #expect(abs(event.start - 1.0) < 0.015)
        // The burst's own end (1.4 s), not the stream's.
        #expect(abs(event.end - 1.4) < 0.015)
    }

    /// A model swapped in between utterances (a SIGHUP reload) answers the later ones exactly as a
    /// detector that had it from the start: gate, history and stream times carry on. Here the
    /// swap comes 10 ms after the second burst began, while its onset is still being confirmed;
    /// the new model has half-second windows (shorter leads) and another kernel.
    @Test func aModelSwappedBetweenUtterancesTakesOverCleanly() throws {
        var configuration = RandomModelConfiguration()
        configuration.width = 6
        configuration.stateSize = 4
        configuration.kernel = .diag
        configuration.discretization = .zoh
        configuration.clipSeconds = 0.5
        configuration.seed = 9
        let other = S4Model.random(configuration)
        let samples = Self.scene(seconds: 6, onsets: [0.5, 2.5, 4.5])
        let swapAt = 40160  // 2.51 s
        let swapped = KeywordDetector(model: Self.model, sampleRate: 16000, configuration: Self.everything)
        var events = swapped.process(Array(samples[..<swapAt]))
        #expect(!swapped.isDeciding)
        swapped.replaceModel(other)
        events += swapped.process(Array(samples[swapAt...])) + swapped.finish()

        let first = Self.run(samples)
        let otherDetector = KeywordDetector(model: other, sampleRate: 16000, configuration: Self.everything)
        let second = otherDetector.process(samples) + otherDetector.finish()
        #expect(events.count == 3 && first.count == 3 && second.count == 3)
        #expect(events.first == first.first)
        #expect(Array(events.dropFirst()) == Array(second.dropFirst()))
        #expect(events.first != second.first)
    }

    /// A click 0.45 s before a word, while the click's windows are still filling, does not hide
    /// the word. The word's onset cuts the click's windows short: they are completed with zeros
    /// from there and decided at once. The word's own windows start after the click, so it gets
    /// exactly the probabilities it has without the click.
    @Test func aClickJustBeforeAWordDoesNotHideIt() throws {
        let samples = Self.scene(seconds: 3, bursts: [(1.0, 0.05), (1.45, 0.4)])
        let events = Self.run(samples)
        try #require(events.count == 2, "\(events.map(\.start))")
        let (click, word) = (events[0], events[1])
        #expect(abs(click.start - 1.0) < 0.015 && abs(word.start - 1.45) < 0.015)
        // Decided when the gate confirmed the word (`onsetFrames` loud frames of 10 ms), with
        // zeros from the start of that frame on.
        #expect(abs(click.decidedAt - (word.start + 0.01 * Double(Self.everything.onsetFrames))) < 0.011)
        let cut = Int((click.decidedAt * 16000).rounded()) - 160
        let onset = Int((click.start * 16000).rounded())
        Self.expectScores(click, Self.windowMean(Self.model, samples, onset: onset, cut: cut), Self.model)
        let alone = try #require(Self.run(Self.scene(seconds: 3, bursts: [(1.45, 0.4)])).first)
        #expect(word == alone)
    }

    /// Bursts closer together than a window each get their decision.
    @Test func eachOfCloseBurstsIsDecided() {
        let events = Self.run(Self.scene(seconds: 3, bursts: [(1.0, 0.05), (1.3, 0.05), (1.6, 0.3)]))
        #expect(events.map { ($0.start * 10).rounded() / 10 } == [1.0, 1.3, 1.6])
    }

    /// Noise from 1.0 s running into a burst at 1.6 s (a breath before a word).
    static func lateWordScene() -> [Float] {
        var rng = SeededGenerator(seed: 3)
        let burst = scene(seconds: 4, onsets: [1.6], length: 0.4)
        return burst.enumerated().map { i, x in
            let t = Double(i) / 16000
            return x + (t >= 1.0 && t < 1.6 ? Float(0.03 * rng.normal()) : 0)
        }
    }

    /// A random model whose labels are `_unknown_` and `_silence_` only: never sure of a command.
    static func nonCommandModel(seed: UInt64 = 1) -> S4Model {
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.seed = seed
        configuration.labels = ["_unknown_", "_silence_"]
        return S4Model.random(configuration)
    }

    /// Softer noise from 1.0 s runs into a burst at 1.6 s (a breath before a word): the gate opens
    /// at 1.0 s and its windows (ending at 1.65 and 1.85 s) cut the burst off. When they are not
    /// sure of a command, the utterance is classified again with windows placed by its loudest
    /// frame, and the look surer of a command is the one decision.
    @Test func aWordLateInItsUtteranceGetsASecondLook() throws {
        let samples = Self.lateWordScene()
        // The loudest 10 ms frame between the onset and the first look's decision (1.85 s), as
        // the gate measures it; the second look puts the word's start `peakLag` before it.
        let frames = (100..<185).map { k in
            (start: k * 160, level: samples[(k * 160)..<(k * 160 + 160)].reduce(0) { $0 + Double($1) * Double($1) })
        }
        let peak = try #require(frames.max { $0.level < $1.level }).start
        let wordStart = peak - Int((Self.everything.peakLag * 16000).rounded())
        #expect(peak >= 25600)

        func run(_ model: S4Model, _ configuration: DetectorConfiguration = Self.everything) -> [DetectionEvent] {
            let detector = KeywordDetector(model: model, sampleRate: 16000, configuration: configuration)
            return detector.process(samples) + detector.finish()
        }

        // A model of non-commands is sure of none: the second look decides (a tie at 0).
        let nonCommands = Self.nonCommandModel()
        let events = run(nonCommands)
        try #require(events.count == 1, "\(events.map(\.start))")
        #expect(abs(events[0].start - Double(wordStart) / 16000) < 1e-9)
        Self.expectScores(events[0], Self.windowMean(nonCommands, samples, onset: wordStart), nonCommands)

        // Models of commands: one event, the look whose likeliest command is likelier; over
        // these seeds each look wins at least once.
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.labels = ["yes", "no"]
        var winners: Set<Bool> = []
        for seed in UInt64(1)...8 {
            configuration.seed = seed
            let model = S4Model.random(configuration)
            let first = Self.windowMean(model, samples, onset: 16000)
            let second = Self.windowMean(model, samples, onset: wordStart)
            let firstIsSurer = first.max()! > second.max()!
            let decided = run(model)
            try #require(decided.count == 1, "seed \(seed)")
            #expect(abs(decided[0].start - (firstIsSurer ? 1.0 : Double(wordStart) / 16000)) < 1e-9, "seed \(seed)")
            Self.expectScores(decided[0], firstIsSurer ? first : second, model)
            winners.insert(firstIsSurer)
        }
        #expect(winners == [true, false])
        configuration.seed = 1
        let commands = S4Model.random(configuration)
        let first = Self.windowMean(commands, samples, onset: 16000)

        // No second look for a first look sure enough, nor when it is off.
        var sure = Self.everything
        sure.secondLookBelow = 0
        var off = Self.everything
        off.secondLookAfter = nil
        for configuration in [sure, off] {
            let once = run(commands, configuration)
            try #require(once.count == 1)
            #expect(abs(once[0].start - 1.0) < 0.015)
            Self.expectScores(once[0], first, commands)
        }
    }

    /// A model given during the first look of an utterance that gets a second one waits for the
    /// decision: both looks are by the old model.
    @Test func aModelGivenBeforeASecondLookWaitsForItsDecision() throws {
        let samples = Self.lateWordScene()
        let (old, new) = (Self.nonCommandModel(), Self.nonCommandModel(seed: 2))
        func run(_ model: S4Model) -> [DetectionEvent] {
            let detector = KeywordDetector(model: model, sampleRate: 16000, configuration: Self.everything)
            return detector.process(samples) + detector.finish()
        }
        let detector = KeywordDetector(model: old, sampleRate: 16000, configuration: Self.everything)
        // The first look is decided at 1.85 s (onset 1.0 s, lead 0.15 s); the model comes at
        // 1.75 s, the second look's windows, placed by the burst, end after 2.2 s.
        var events = detector.process(Array(samples[..<28000]))
        #expect(events.isEmpty && detector.isDeciding)
        detector.replaceModel(new)
        events += detector.process(Array(samples[28000...])) + detector.finish()
        let (byOld, byNew) = (run(old), run(new))
        try #require(events.count == 1 && byOld.count == 1 && byNew.count == 1)
        #expect(events == byOld && byOld != byNew)
    }

    /// Without a threshold given, each model's own `detection_threshold` decides what is reported,
    /// also after a swap; a threshold given wins over it.
    @Test func theThresholdIsTheModelsOwnUnlessGiven() throws {
        let samples = Self.scene(seconds: 6, onsets: [1.0, 4.0])
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.labels = ["yes", "no"]  // every decision is a command
        configuration.detectionThreshold = 0
        let reportsAll = S4Model.random(configuration)
        configuration.detectionThreshold = 1
        let reportsNone = S4Model.random(configuration)
        func run(_ model: S4Model, threshold: Float? = nil, swapTo next: S4Model? = nil) -> [DetectionEvent] {
            var settings = DetectorConfiguration()
            settings.threshold = threshold
            let detector = KeywordDetector(model: model, sampleRate: 16000, configuration: settings)
            var events = detector.process(Array(samples[..<48000]))  // 3 s: the first burst decided
            if let next { detector.replaceModel(next) }
            events += detector.process(Array(samples[48000...])) + detector.finish()
            return events
        }
        /// Which burst each event is of: the first (before the swap at 3 s) or the second.
        func bursts(_ events: [DetectionEvent]) -> [Int] { events.map { $0.start < 3 ? 1 : 2 } }
        #expect(bursts(run(reportsAll)) == [1, 2])
        #expect(run(reportsNone).isEmpty)
        #expect(run(reportsNone, threshold: 0).count == 2)
        #expect(run(reportsAll, threshold: 1).isEmpty)
        #expect(bursts(run(reportsAll, swapTo: reportsNone)) == [1])
        #expect(bursts(run(reportsNone, swapTo: reportsAll)) == [2])
        #expect(DetectorConfiguration().threshold(for: Self.model) == DetectorConfiguration.defaultThreshold)
    }

    /// A model given while an utterance is being decided takes over once it is: that utterance
    /// is classified by the old model alone, the next ones by the new one.
    @Test func aModelGivenMidUtteranceWaitsForItsDecision() throws {
        var configuration = RandomModelConfiguration()
        configuration.width = 6
        configuration.seed = 5
        let other = S4Model.random(configuration)
        let samples = Self.scene(seconds: 4, onsets: [0.5, 2.5])
        let detector = KeywordDetector(model: Self.model, sampleRate: 16000, configuration: Self.everything)
        var events = detector.process(Array(samples[..<11200]))  // 0.7 s: the first burst is being decided
        #expect(detector.isDeciding)
        detector.replaceModel(other)
        events += detector.process(Array(samples[11200...])) + detector.finish()
        let old = Self.run(samples)
        let fresh = KeywordDetector(model: other, sampleRate: 16000, configuration: Self.everything)
        let new = fresh.process(samples) + fresh.finish()
        try #require(events.count == 2 && old.count == 2 && new.count == 2)
        #expect(events[0] == old[0] && events[1] == new[1] && old[1] != new[1])
    }
}
