import Foundation
import S4RandomModel
import Testing

@testable import S4Core

/// The network of stages: an S4 front end at the input rate, frame pooling defined in seconds,
/// an S4 stack at the frame clock (docs/model-format.md).
@Suite struct StageTests {
    /// A random two-stage model: a filter bank (or blocks) of `kernel` at the input rate, 10 ms
    /// frames, two S4D blocks at the frame clock.
    static func twoStageModel(
        kernel: ModelMetadata.Kernel, bank: Bool = true, steps: ClosedRange<Double> = 0.001...0.1,
        rectifier: ModelMetadata.Pooling.Rectifier = .square
    ) -> S4Model {
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.layerCount = bank ? 1 : 2
        configuration.stateSize = 16
        configuration.kernel = kernel
        configuration.discretization = kernel == .dplr ? .bilinear : .zoh
        configuration.isBank = bank
        configuration.stepRange = steps
        var frames = FrameStageConfiguration()
        frames.pooling.rectifier = rectifier
        configuration.frames = frames
        configuration.seed = 21
        return S4Model.random(configuration)
    }

    static func signal(count: Int, rate: Double, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { n in Float(0.3 * sin(2 * .pi * 440 * Double(n) / rate) + 0.05 * rng.normal()) }
    }

    /// Frame k starts at ⌈k·τ·f − 10⁻⁶⌉, so sample n lies in frame ⌊n/(τ·f)⌋ also when a frame is
    /// 110.25 samples (11.025 kHz) or 220.5 (22.05 kHz).
    @Test(arguments: [11025.0, 16000, 22050, 44100, 8000])
    func frameBoundariesFollowSeconds(rate: Double) {
        let boundaries = FrameBoundaries(frameSeconds: 0.01, sampleRate: rate)
        var frame = 0
        for n in 0..<Int(rate * 2) {
            if boundaries.start(ofFrame: frame + 1) == n { frame += 1 }
            #expect(frame == Int((Double(n) / (rate / 100)).rounded(.down)), "sample \(n)")
        }
        #expect(boundaries.completeFrames(in: Int(rate)) == 100)
        #expect(boundaries.completeFrames(in: Int(rate) - 1) == 99)
    }

    /// Recurrent mode (front end per sample in chunks of 160, frame stack per frame) equals
    /// convolution mode (each stage over the whole window with its own kernel length) over a
    /// one-second window, also where frames are fractional. Both run in Float and differ in
    /// summation order (FFT against recurrence) in the front end; the log of frame energies and
    /// two blocks carry that to the logits (measured ≤ 2e-6); the test allows 5e-5, and 5e-5 of
    /// the frames' scale.
    @Test(arguments: [
        (ModelMetadata.Kernel.diag, 16000.0), (.diag, 44100), (.diag, 11025),
        (.dplr, 16000), (.dplr, 44100), (.dplr, 11025),
    ])
    func recurrentEqualsConvolution(kernel: ModelMetadata.Kernel, rate: Double) {
        let model = Self.twoStageModel(kernel: kernel)
        let window = Self.signal(count: model.windowLength(forSampleRate: rate), rate: rate, seed: 5)
        let convolution = ConvolutionNetwork(model: model, sampleRate: rate).trace(window)
        let recurrent = RecurrentNetwork(model: model, sampleRate: rate)
        let state = recurrent.makeState(chunkCapacity: 160)
        recurrent.process(window, state: state)
        #expect(convolution.frames.count == 100 * model.stages[0].width)
        #expect(relativeError(recurrent.logits(state), convolution.logits.map(Double.init)) < 5e-5)
        let frames = Self.recurrentFrames(model, rate: rate, window: window)
        #expect(relativeError(frames, convolution.frames.map(Double.init)) < 5e-5)
    }

    /// The pooled frames of the recurrent engine, collected as the pooler emits them.
    static func recurrentFrames(_ model: S4Model, rate: Double, window: [Float]) -> [Float] {
        let network = RecurrentNetwork(model: model, sampleRate: rate)
        let state = network.makeState(chunkCapacity: 1)
        var frames: [Float] = []
        for sample in window {
            network.process([sample], state: state)
            if let pooler = state.pooler, state.sampleCount == pooler.boundaries.start(ofFrame: frames.count / pooler.width + 1) {
                frames += UnsafeBufferPointer(start: pooler.frames, count: pooler.width)
            }
        }
        return frames
    }

    /// Front-end blocks (not a bank) at the input rate work the same way.
    @Test func blocksAsFrontEnd() {
        let model = Self.twoStageModel(kernel: .diag, bank: false, rectifier: .abs)
        let window = Self.signal(count: 16000, rate: 16000, seed: 8)
        let recurrent = RecurrentNetwork(model: model, sampleRate: 16000)
        let state = recurrent.makeState()
        recurrent.process(window, state: state)
        let reference = ConvolutionNetwork(model: model, sampleRate: 16000).logits(window).map(Double.init)
        #expect(relativeError(recurrent.logits(state), reference) < 5e-5)
    }

    /// Chunked recurrence equals per-sample recurrence, with a partial frame carried across
    /// chunks: the SSM states and frame sums are carried exactly; only BLAS may sum the
    /// position-wise products in another order, so logits agree to 1e-5 (measured ≤ 1e-7).
    @Test(arguments: [1, 7, 64, 160, 441])
    func chunkingDoesNotChangeTheOutput(chunk: Int) {
        let model = Self.twoStageModel(kernel: .diag)
        for rate in [11025.0, 44100] {
            let network = RecurrentNetwork(model: model, sampleRate: rate)
            let signal = Self.signal(count: Int(rate / 2), rate: rate, seed: 3)
            let perSample = network.makeState(chunkCapacity: 1)
            for sample in signal { network.process([sample], state: perSample) }
            let chunked = network.makeState(chunkCapacity: chunk)
            network.processInUnevenPieces(signal, state: chunked)
            #expect(chunked.sampleCount == perSample.sampleCount)
            #expect(relativeError(network.logits(chunked), network.logits(perSample).map(Double.init)) < 1e-5, "\(rate) Hz")
        }
    }

    /// The bundled model (`models/default.safetensors`: a 64-channel bank, six 192-wide blocks)
    /// fed in uneven pieces through 10 ms and 80 ms chunk capacities (so 1 and 8 frames through
    /// the frame stack at once, and stage 0 in several slices) gives the logits of one sample at
    /// a time, at 16 and 48 kHz: 1e-5 (only BLAS sums the maps of several frames in another order).
    @Test(arguments: [16000.0, 48000])
    func bundledModelChunkedEqualsPerSample(rate: Double) throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("models/default.safetensors")
        let model = try S4Model(safetensors: Array(try Data(contentsOf: file)))
        let network = RecurrentNetwork(model: model, sampleRate: rate)
        let signal = Self.signal(count: Int(rate * 0.6), rate: rate, seed: 4)
        let perSample = network.makeState(chunkCapacity: 1)
        network.process(signal, state: perSample)
        let reference = network.logits(perSample).map(Double.init)
        for chunk in [Int(rate / 100), Int(rate * 0.08)] {
            let chunked = network.makeState(chunkCapacity: chunk)
            network.processInUnevenPieces(signal, state: chunked)
            #expect(relativeError(network.logits(chunked), reference) < 1e-5, "\(chunk)-sample chunks at \(rate) Hz")
        }
    }

    /// The same band-limited utterance at 8 and 48 kHz gives the frame features and logits it
    /// gives at 16 kHz when stage 0's Δ is rescaled (frames are in seconds, so frame k is the
    /// same 10 ms at every rate), and clearly different ones when Δ is left as trained. Measured:
    /// frames 0.4% (8 kHz) and 0.3% (48 kHz) off with Δ rescaled, 55% and 57% with Δ unchanged;
    /// logits 0.16% and 0.07% against 42% and 47%. What remains with Δ rescaled is ZOH's hold
    /// of each sample and the frame means taken over 80 against 160 or 480 samples.
    @Test(arguments: [8000.0, 48000.0])
    func framesFollowContinuousTime(rate: Double) {
        // A filter bank whose modes lie below 3 kHz at every rate (Δ·M·f_train/2 with M = 8).
        let model = Self.twoStageModel(kernel: .diag, steps: 0.004...0.03)
        func trace(_ model: S4Model, rate: Double) -> NetworkTrace {
            let samples = SamplingRateTests.signal(rate: rate, seconds: 0.5).map(Float.init)
            return ConvolutionNetwork(model: model, sampleRate: rate).trace(samples)
        }
        let reference = trace(model, rate: 16000)
        let scaled = trace(model, rate: rate)
        // The same weights read as if trained at `rate`: Δ unchanged, frames still of 10 ms.
        var metadata = model.metadata
        metadata.sampleRate = Int(rate)
        let unchanged = trace(
            S4Model(
                metadata: metadata, stages: model.stages, pooling: model.pooling,
                finalNorm: model.finalNorm, decoder: model.decoder), rate: rate)
        // After the first 30 ms of start-up transient.
        let skip = 3 * model.stages[0].width
        func frames(_ trace: NetworkTrace) -> [Double] { trace.frames.dropFirst(skip).map(Double.init) }
        let reference0 = frames(reference)
        let framesScaled = relativeError(frames(scaled).map(Float.init), reference0)
        let framesUnchanged = relativeError(frames(unchanged).map(Float.init), reference0)
        #expect(framesScaled < 0.02, "frames, Δ rescaled: \(framesScaled)")
        #expect(framesUnchanged > 0.3, "frames, Δ unchanged: \(framesUnchanged)")
        let logitsScaled = relativeError(scaled.logits, reference.logits.map(Double.init))
        let logitsUnchanged = relativeError(unchanged.logits, reference.logits.map(Double.init))
        #expect(logitsScaled < 0.01, "logits, Δ rescaled: \(logitsScaled)")
        #expect(logitsUnchanged > 0.2, "logits, Δ unchanged: \(logitsUnchanged)")
    }
}
