import Numerics
import Foundation

/// A small deterministic generator (SplitMix64), so random models are the same on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A standard normal sample (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// The shape of a randomly initialised model.
public struct RandomModelConfiguration: Sendable {
    public var width = 4
    public var layerCount = 2
    public var stateSize = 8
    public var kernel = ModelMetadata.Kernel.dplr
    public var discretization = DiscretizationMethod.bilinear
    public var output = ModelMetadata.Output.glu
    public var labels = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"]
    public var sampleRate = 16000
    public var clipSeconds = 1.0
    public var seed: UInt64 = 1

    public init() {}
}

extension S4Model {
    /// An untrained model with the paper's initialisation: HiPPO-LegS NPLR (DPLR) or S4D-Lin
    /// (diagonal), log Δ uniform in [log 0.001, log 0.1], C complex normal, D and linear maps
    /// random. Every value is rounded to Float, so the model survives a save and load unchanged.
    /// Used by tests and by `bench` when no trained model is given.
    public static func random(_ configuration: RandomModelConfiguration) -> S4Model {
        var rng = SeededGenerator(seed: configuration.seed)
        let h = configuration.width, n = configuration.stateSize
        func rounded(_ x: Double) -> Double { Double(Float(x)) }
        func roundedComplex(_ z: Complex<Double>) -> Complex<Double> { Complex(rounded(z.real), rounded(z.imaginary)) }
        func uniform(_ count: Int, scale: Double) -> [Float] {
            (0..<count).map { _ in Float(Double.random(in: -scale..<scale, using: &rng)) }
        }
        let initialization = configuration.kernel == .dplr
            ? HiPPO.nplrLegS(stateSize: n, bImaginaryClip: 2)
            : S4DInitialization.linear(stateSize: n)
        let normalization: () -> Normalization = {
            .layer(weight: Array(repeating: 1, count: h), bias: Array(repeating: 0, count: h), epsilon: 1e-5)
        }
        var blocks: [S4Block] = []
        for _ in 0..<configuration.layerCount {
            let channels = (0..<h).map { _ -> SSMChannel in
                let logStep = Double.random(in: Foundation.log(0.001)...Foundation.log(0.1), using: &rng)
                let c = (0..<(n / 2)).map { _ in Complex(rng.normal() * 0.5.squareRoot(), rng.normal() * 0.5.squareRoot()) }
                return SSMChannel(lambda: initialization.lambda.map(roundedComplex),
                                  p: configuration.kernel == .dplr ? [initialization.p.map(roundedComplex)] : [],
                                  b: initialization.b.map(roundedComplex), c: c.map(roundedComplex),
                                  d: rounded(rng.normal()), step: Foundation.exp(Double(Float(logStep))),
                                  method: configuration.discretization)
            }
            let outWidth = configuration.output == .glu ? 2 * h : h
            let scale = 1 / Double(h).squareRoot()
            blocks.append(S4Block(norm: normalization(), channels: channels,
                                  output: LinearMap(weight: uniform(outWidth * h, scale: scale), bias: uniform(outWidth, scale: scale),
                                                    inputCount: h, outputCount: outWidth)))
        }
        let k = configuration.labels.count
        let metadata = ModelMetadata(
            labels: configuration.labels, sampleRate: configuration.sampleRate, inputMean: 0, inputStd: 0.1,
            clipSeconds: configuration.clipSeconds, dModel: h, layerCount: configuration.layerCount, stateSize: n,
            kernel: configuration.kernel, discretization: configuration.discretization,
            rank: configuration.kernel == .dplr ? 1 : 0, norm: .layer, normEpsilon: 1e-5,
            output: configuration.output, extra: ["untrained": true, "trained_on": "nothing: random weights (seed \(configuration.seed))"])
        return S4Model(metadata: metadata, encoderWeight: uniform(h, scale: 1), encoderBias: uniform(h, scale: 0.1),
                       blocks: blocks, finalNorm: normalization(),
                       decoder: LinearMap(weight: uniform(k * h, scale: 1 / Double(h).squareRoot()), bias: uniform(k, scale: 0.1),
                                          inputCount: h, outputCount: k))
    }
}
