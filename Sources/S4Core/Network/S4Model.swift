/// One pre-norm residual block: x ← x + Out(GELU(SSM(Norm(x)))).
public struct S4Block: Sendable {
    public let norm: Normalization
    /// H independent SSM channels, in continuous time.
    public let channels: [SSMChannel]
    /// H → 2H followed by a GLU (value · σ(gate)), or H → H.
    public let output: LinearMap
    public var isGated: Bool { output.outputCount == 2 * output.inputCount }
}

/// The immutable weights of an S4 classifier (docs/model-format.md). Per-stream state lives in
/// `RecurrentState`; discretisation for a sampling rate lives in `RecurrentNetwork` and
/// `ConvolutionNetwork`, so one model serves any number of streams at any rates.
public struct S4Model: Sendable {
    public let metadata: ModelMetadata
    /// Linear(1 → H) applied to (x − mean)/std per sample.
    public let encoderWeight: [Float]
    public let encoderBias: [Float]
    public let blocks: [S4Block]
    public let finalNorm: Normalization
    public let decoder: LinearMap

    public init(metadata: ModelMetadata, encoderWeight: [Float], encoderBias: [Float], blocks: [S4Block],
                finalNorm: Normalization, decoder: LinearMap) {
        self.metadata = metadata; self.encoderWeight = encoderWeight; self.encoderBias = encoderBias
        self.blocks = blocks; self.finalNorm = finalNorm; self.decoder = decoder
    }

    public var width: Int { metadata.dModel }
    public var labels: [String] { metadata.labels }

    /// Δ for input at `sampleRate`: Δ_train · f_train / f (s4-reference.md §5). A, B, C, D are
    /// continuous-time and unchanged; only Ā and B̄ follow the rate.
    public func stepScale(forSampleRate sampleRate: Double) -> Double {
        Double(metadata.sampleRate) / sampleRate
    }

    /// Samples in one classification window at `sampleRate`.
    public func windowLength(forSampleRate sampleRate: Double) -> Int {
        max(1, Int((metadata.clipSeconds * sampleRate).rounded()))
    }

    /// Parameter count as stored (complex values count twice).
    public var parameterCount: Int {
        var count = encoderWeight.count + encoderBias.count + 2 * width + decoder.weight.count + decoder.bias.count
        for block in blocks {
            count += 2 * width + block.output.weight.count + block.output.bias.count
            for channel in block.channels {
                count += 2 + 2 * (channel.lambda.count + channel.b.count + channel.c.count) + 2 * channel.p.count * channel.modeCount
            }
        }
        return count
    }
}
