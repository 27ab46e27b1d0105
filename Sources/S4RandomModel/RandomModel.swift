import Foundation
import Numerics
import S4Core

/// The shape of a randomly initialised model: stage 0 at the input rate, and optionally frame
/// pooling and a stage at the frame clock.
public struct RandomModelConfiguration: Sendable {
    public var width = 4
    public var layerCount = 2
    public var stateSize = 8
    public var kernel = ModelMetadata.Kernel.dplr
    public var discretization = DiscretizationMethod.bilinear
    public var output = ModelMetadata.Output.glu
    /// Stage 0 as a bare filter bank (one SSM layer, encoder weight 1) instead of blocks.
    public var isBank = false
    /// Stage 0's Δ range at the training rate.
    public var stepRange = 0.001...0.1
    /// A second stage at the frame clock, after frame pooling.
    public var frames: FrameStageConfiguration?
    public var labels = Vocabulary.labels
    public var sampleRate = 16000
    public var clipSeconds = 1.0
    public var seed: UInt64 = 1
    /// Written as the model's `detection_threshold` when set.
    public var detectionThreshold: Float?
    /// A streaming head (`.frame`, which needs `frames` and a `_` label such as `_nothing_`) or a
    /// clip head.
    public var headPooling = ModelMetadata.HeadPooling.mean
    /// A streaming head's window in frames (`ModelMetadata.headWindowFrames`).
    public var headWindowFrames = 1

    public init() {}
}

extension RandomModelConfiguration {
    /// The smallest network of the shipped model's shape: an S4D filter bank of 8 channels at the
    /// input rate, 10 ms frames, a frame stage of two S4D blocks of width 8 (fuzz targets, tests).
    public static var smallStages: RandomModelConfiguration {
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.layerCount = 1
        configuration.isBank = true
        configuration.kernel = .diag
        configuration.discretization = .zoh
        configuration.frames = FrameStageConfiguration()
        return configuration
    }

    /// The same with a streaming head: labels the ten commands and `_nothing_`, a window of
    /// four frames.
    public static var smallStreaming: RandomModelConfiguration {
        var configuration = smallStages
        configuration.labels = Vocabulary.commands + ["_nothing_"]
        configuration.headPooling = .frame
        configuration.headWindowFrames = 4
        return configuration
    }
}

/// The frame pooling and frame-clock stage of a random two-stage model.
public struct FrameStageConfiguration: Sendable {
    public var pooling = ModelMetadata.Pooling(frameSeconds: 0.01)
    public var width = 8
    public var layerCount = 2
    public var stateSize = 8
    public var kernel = ModelMetadata.Kernel.diag
    /// Δ in frames.
    public var stepRange = 0.01...0.5

    public init() {}
}

extension S4Model {
    /// An untrained model with the paper's initialisation: HiPPO-LegS NPLR (DPLR) or S4D-Lin
    /// (diagonal), log Δ uniform in the configured range, C complex normal, D and linear maps
    /// random. Every value is rounded to Float, so the model survives a save and load unchanged.
    /// Used by tests and by `bench` when no trained model is given.
    public static func random(_ configuration: RandomModelConfiguration) -> S4Model {
        var rng = SeededGenerator(seed: configuration.seed)
        func rounded(_ x: Double) -> Double { Double(Float(x)) }
        func roundedComplex(_ z: Complex<Double>) -> Complex<Double> { Complex(rounded(z.real), rounded(z.imaginary)) }
        func uniform(_ count: Int, scale: Double) -> [Float] {
            (0..<count).map { _ in Float(Double.random(in: -scale..<scale, using: &rng)) }
        }
        func linear(_ inputs: Int, _ outputs: Int, scale: Double) -> LinearMap {
            LinearMap(
                weight: uniform(inputs * outputs, scale: scale), bias: uniform(outputs, scale: min(scale, 0.1)),
                inputCount: inputs, outputCount: outputs)
        }
        func layerNorm(_ h: Int) -> Normalization {
            .layer(weight: Array(repeating: 1, count: h), bias: Array(repeating: 0, count: h), epsilon: 1e-5)
        }
        func channels(_ stage: ModelMetadata.Stage, steps: ClosedRange<Double>) -> [SSMChannel] {
            let n = stage.stateSize
            let initialization =
                stage.kernel == .dplr
                ? HiPPO.nplrLegS(stateSize: n, bImaginaryClip: 2)
                : S4DInitialization.linear(stateSize: n)
            return (0..<stage.width).map { _ -> SSMChannel in
                let logStep = Double.random(in: Foundation.log(steps.lowerBound)...Foundation.log(steps.upperBound), using: &rng)
                let c = (0..<(n / 2)).map { _ in Complex(rng.normal() * 0.5.squareRoot(), rng.normal() * 0.5.squareRoot()) }
                return SSMChannel(
                    lambda: initialization.lambda.map(roundedComplex),
                    p: stage.kernel == .dplr ? [initialization.p.map(roundedComplex)] : [],
                    b: initialization.b.map(roundedComplex), c: c.map(roundedComplex),
                    d: rounded(rng.normal()), stepSize: Foundation.exp(Double(Float(logStep))),
                    method: stage.discretization)
            }
        }
        func stage(_ description: ModelMetadata.Stage, inputWidth: Int, steps: ClosedRange<Double>) -> S4Stage {
            let h = description.width
            if description.isBank {
                let encoder = LinearMap(
                    weight: Array(repeating: 1, count: h), bias: Array(repeating: 0, count: h),
                    inputCount: 1, outputCount: h)
                return S4Stage(clock: description.clock, encoder: encoder, layers: [.bank(channels(description, steps: steps))])
            }
            let outWidth = description.output == .glu ? 2 * h : h
            let layers = (0..<description.layerCount).map { _ in
                S4Layer.block(
                    S4Block(
                        norm: layerNorm(h), channels: channels(description, steps: steps),
                        output: linear(h, outWidth, scale: 1 / Double(h).squareRoot())))
            }
            return S4Stage(
                clock: description.clock, encoder: linear(inputWidth, h, scale: 1 / Double(inputWidth).squareRoot()),
                layers: layers)
        }

        var descriptions = [
            ModelMetadata.Stage(
                clock: .input, width: configuration.width, layerCount: configuration.isBank ? 1 : configuration.layerCount,
                stateSize: configuration.stateSize, isBank: configuration.isBank, kernel: configuration.kernel,
                discretization: configuration.discretization, rank: 1, output: configuration.output)
        ]
        var stages = [stage(descriptions[0], inputWidth: 1, steps: configuration.stepRange)]
        var pooling: FramePooling?
        if let frames = configuration.frames {
            let description = ModelMetadata.Stage(
                clock: .frames, width: frames.width, layerCount: frames.layerCount, stateSize: frames.stateSize,
                kernel: frames.kernel, discretization: frames.kernel == .dplr ? .bilinear : .zoh, rank: 1)
            descriptions.append(description)
            let h0 = configuration.width
            // A norm that maps log-energies of a unit-scale signal to roughly unit scale.
            let norm = Normalization.batch(
                weight: Array(repeating: 1, count: h0), bias: Array(repeating: 0, count: h0),
                runningMean: (0..<h0).map { _ in rounded(-2 + rng.normal()) },
                runningVariance: Array(repeating: 4, count: h0), epsilon: frames.pooling.normEpsilon)
            pooling = FramePooling(frames.pooling, norm: norm)
            stages.append(stage(description, inputWidth: h0, steps: frames.stepRange))
        }
        let k = configuration.labels.count, last = descriptions[descriptions.count - 1].width
        var extra: [String: Any] = ["untrained": true, "trained_on": "nothing: random weights (seed \(configuration.seed))"]
        if let threshold = configuration.detectionThreshold { extra["detection_threshold"] = Double(threshold) }
        let metadata = ModelMetadata(
            labels: configuration.labels, sampleRate: configuration.sampleRate, inputMean: 0, inputStd: 0.1,
            clipSeconds: configuration.clipSeconds, stages: descriptions, pooling: configuration.frames?.pooling,
            headPooling: configuration.headPooling, headWindowFrames: configuration.headWindowFrames, extra: extra)
        return S4Model(
            metadata: metadata, stages: stages, pooling: pooling, finalNorm: layerNorm(last),
            decoder: linear(last, k, scale: 1 / Double(last).squareRoot()))
    }
}
