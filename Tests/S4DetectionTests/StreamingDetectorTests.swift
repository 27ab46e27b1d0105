import Foundation
import S4Core
import S4RandomModel
import Testing

@testable import S4Detection

/// A streaming head's detection: the event rule on posteriors made by hand, then the whole
/// detector on a random streaming model (one state through the stream).
@Suite struct StreamingDetectorTests {
    static let labels = ["yes", "no", "_nothing_"]

    static func rule(threshold: Float = 0.5, everything: Bool = false) -> FrameEventRule {
        var configuration = DetectorConfiguration()
        configuration.reportEverything = everything
        configuration.smoothingSeconds = 0.01  // one frame: the posteriors as given
        configuration.activityFloor = 0.2
        configuration.peakHoldSeconds = 0.05
        configuration.releaseSeconds = 0.2
        return FrameEventRule(labels: labels, frameSeconds: 0.01, threshold: threshold, configuration: configuration)
    }

    /// Posteriors over 100 frames: "yes" at `level` over the frames in `spans`, "_nothing_" elsewhere.
    static func frames(_ spans: [(Range<Int>, label: Int, level: Float)], count: Int = 100) -> [[Float]] {
        (0..<count).map { t in
            guard let span = spans.first(where: { $0.0.contains(t) }) else { return [0, 0, 1] }
            var p: [Float] = [0, 0, 1 - span.level]
            p[span.label] = span.level
            return p
        }
    }

    static func events(_ rule: FrameEventRule, _ frames: [[Float]]) -> [DetectionEvent] {
        var rule = rule
        var events = frames.enumerated().compactMap { rule.add($1, time: Double($0 + 1) * 0.01) }
        if let last = rule.finish(at: Double(frames.count) * 0.01) { events.append(last) }
        return events
    }

    /// A word whose posterior rises, dips and rises again (lower) within the release time is one
    /// event, at its peak's label and value, decided once the peak has stood for the hold time.
    @Test func oneEventPerWord() {
        let word = Self.frames([
            (10..<12, 0, 0.3), (12..<14, 0, 0.6), (14..<15, 0, 0.9), (15..<25, 0, 0.6), (25..<28, 0, 0.25),
            (28..<34, 0, 0.5),
        ])
        let events = Self.events(Self.rule(), word)
        #expect(events.count == 1)
        #expect(events.first?.label == "yes" && events.first?.score == 0.9, "\(events)")
        #expect(abs((events.first?.end ?? 0) - 0.15) < 1e-9 && abs((events.first?.decidedAt ?? 0) - 0.20) < 1e-9)
        #expect(abs((events.first?.start ?? 0) - 0.11) < 1e-9)
    }

    /// Two words further apart than the release time are two events; closer, the second is in
    /// the first one's refractory time and gives none.
    @Test func refractory() {
        let apart = Self.frames([(10..<20, 0, 0.9), (45..<55, 1, 0.9)])
        #expect(Self.events(Self.rule(), apart).map(\.label) == ["yes", "no"])
        let close = Self.frames([(10..<20, 0, 0.9), (25..<35, 1, 0.9)])
        #expect(Self.events(Self.rule(), close).map(\.label) == ["yes"])
    }

    /// The events at a threshold are exactly the `--all` events whose score reaches it.
    @Test func aThresholdOnlyFilters() {
        let scene = Self.frames(
            [(5..<12, 0, 0.35), (40..<50, 1, 0.6), (50..<54, 0, 0.8), (80..<90, 0, 0.95), (120..<130, 1, 0.45)], count: 160)
        let all = Self.events(Self.rule(everything: true), scene)
        #expect(all.count == 4, "\(all)")
        for threshold in stride(from: Float(0.2), through: 1, by: 0.05) {
            let filtered = all.filter { $0.score >= threshold }
            #expect(Self.events(Self.rule(threshold: threshold), scene) == filtered, "threshold \(threshold)")
        }
    }

    /// A word still active when the stream ends is decided by `finish`.
    @Test func theEndDecidesAWordInProgress() {
        let events = Self.events(Self.rule(), Self.frames([(95..<100, 1, 0.8)]))
        #expect(events.map(\.label) == ["no"])
    }

    // MARK: The detector on a streaming model that hears loudness

    static let scene = KeywordDetectorTests.scene(seconds: 6, onsets: [0.5, 3.5])
    static let model: S4Model = StreamingModel.loudness(seed: 2, scene: scene, bursts: [0.5, 3.5])

    static func run(_ samples: [Float], chunks: [Int], model: S4Model = model, swapAt: (Int, S4Model)? = nil)
        -> [DetectionEvent]
    {
        var configuration = DetectorConfiguration()
        configuration.reportEverything = true
        let detector = KeywordDetector(model: model, sampleRate: 16000, configuration: configuration)
        var events: [DetectionEvent] = []
        var offset = 0, k = 0
        while offset < samples.count {
            if let (at, next) = swapAt, offset <= at && at < offset + chunks[k % chunks.count] { detector.replaceModel(next) }
            let n = min(chunks[k % chunks.count], samples.count - offset)
            events += detector.process(Array(samples[offset..<(offset + n)]))
            offset += n
            k += 1
        }
        return events + detector.finish()
    }

    /// One "yes" per burst, after it; per-sample and chunked input give the same events.
    @Test func oneEventPerBurstAnyChunking() {
        let single = Self.run(Self.scene, chunks: [1])
        #expect(single.map(\.label) == ["yes", "yes"], "\(single)")
        #expect(zip(single, [0.5, 3.5]).allSatisfy { $0.start > $1 && $0.start < $1 + 0.6 }, "\(single)")
        #expect(Self.run(Self.scene, chunks: [160, 3, 4096, 441]) == single)
    }

    /// A model swapped in during the first word takes over once that word is released: the first
    /// word's event is the old model's, the second the new one's, at the same place in the
    /// stream; also when the new model has a clip head (the windowed detector then hears the
    /// second burst on the stream's clock).
    @Test func aSwapWaitsForTheWordAndKeepsTheClock() {
        let unswapped = Self.run(Self.scene, chunks: [800])
        let louder = StreamingModel.loudness(seed: 2, scene: Self.scene, bursts: [0.5, 3.5], gain: 2)
        let swapped = Self.run(Self.scene, chunks: [800], swapAt: (9600, louder))
        let louderAlone = Self.run(Self.scene, chunks: [800], model: louder)
        #expect(swapped.count == 2 && unswapped.count == 2 && louderAlone.count == 2)
        #expect(swapped.first == unswapped.first, "the word in progress is the old model's")
        // The second word is the louder model's (from another state, so equal within 1e-3).
        let scores = (swapped: swapped.last?.score ?? 0, louder: louderAlone.last?.score ?? 0, old: unswapped.last?.score ?? 0)
        #expect(abs(scores.swapped - scores.louder) < 1e-3 && scores.swapped != scores.old, "\(scores)")
        #expect(abs((swapped.last?.start ?? 0) - (unswapped.last?.start ?? 0)) < 0.05, "\(swapped) \(unswapped)")

        let toWindows = Self.run(Self.scene, chunks: [800], swapAt: (9600, KeywordDetectorTests.model))
        #expect(toWindows.first == unswapped.first)
        let second = toWindows.dropFirst().first
        #expect(second.map { abs($0.start - 3.5) < 0.2 } == true, "the windowed detector's onset: \(toWindows)")
    }
}

/// Small random models with a streaming head.
enum StreamingModel {
    /// A random network whose head hears loudness: the final feature that best separates the
    /// frames during `bursts` (0.4 s each, plus 0.2 s after) from the rest of `scene` drives
    /// "yes" (scaled by `gain`), "_nothing_" stays 0 and the other commands far below.
    static func loudness(seed: UInt64, scene: [Float], bursts: [Double], gain: Float = 1) -> S4Model {
        let base = random(seed: seed)
        let h = base.decoder.inputCount, k = base.labels.count
        let identity = (0..<h * h).map { $0 / h == $0 % h ? Float(1) : 0 }
        let probe = S4Model(
            metadata: base.metadata, stages: base.stages, pooling: base.pooling, finalNorm: base.finalNorm,
            decoder: LinearMap(weight: identity, bias: Array(repeating: 0, count: h), inputCount: h, outputCount: h))
        let network = RecurrentNetwork(model: probe, sampleRate: 16000)
        var features: [[Float]] = []
        scene.withUnsafeBufferPointer { network.stream($0, state: network.makeState()) { features.append(Array($0)) } }
        let loud = features.indices.map { f in bursts.contains { Double(f) * 0.01 >= $0 && Double(f) * 0.01 < $0 + 0.6 } }
        func mean(_ j: Int, _ wanted: Bool) -> Float {
            let values = features.indices.filter { loud[$0] == wanted }.map { features[$0][j] }
            return values.reduce(0, +) / Float(values.count)
        }
        let j = (0..<h).max { abs(mean($0, true) - mean($0, false)) < abs(mean($1, true) - mean($1, false)) }!
        let (high, low) = (mean(j, true), mean(j, false))
        // yes = gain · 8 · (x_j − midpoint) / (high − low): about +4·gain in a burst, −4·gain in the quiet.
        let scale = gain * 8 / (high - low)
        var weight = [Float](repeating: 0, count: k * h), bias = [Float](repeating: -20, count: k)
        weight[0 * h + j] = scale
        bias[0] = -scale * (high + low) / 2
        bias[k - 1] = 0
        return S4Model(
            metadata: base.metadata, stages: base.stages, pooling: base.pooling, finalNorm: base.finalNorm,
            decoder: LinearMap(weight: weight, bias: bias, inputCount: h, outputCount: k))
    }

    static func random(seed: UInt64) -> S4Model {
        var configuration = RandomModelConfiguration.smallStreaming
        configuration.seed = seed
        return S4Model.random(configuration)
    }
}
