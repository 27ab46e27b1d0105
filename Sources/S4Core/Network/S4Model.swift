/// One pre-norm residual block: x ← x + Out(GELU(SSM(Norm(x)))).
public struct S4Block: Sendable {
    public let norm: Normalization
    /// H independent SSM channels, in continuous time.
    public let channels: [SSMChannel]
    /// H → 2H followed by a GLU (value · σ(gate)), or H → H.
    public let output: LinearMap
    public var isGated: Bool { output.outputCount == 2 * output.inputCount }

    public init(norm: Normalization, channels: [SSMChannel], output: LinearMap) {
        self.norm = norm; self.channels = channels; self.output = output
    }
}

/// A layer of a stage: a residual block, or a bare filter bank x ← SSM(x) whose H channels
/// each filter their own input (with a stage encoder of weight 1, the same samples).
public enum S4Layer: Sendable {
    case block(S4Block)
    case bank([SSMChannel])

    public var channels: [SSMChannel] {
        switch self {
        case .block(let block): block.channels
        case .bank(let channels): channels
        }
    }
}

/// When a stage takes a step: once per input sample (Δ follows the input rate), or once per
/// frame of τ seconds (Δ independent of the input rate).
public enum StageClock: String, Sendable {
    case input
    case frames
}

/// A stack of S4 layers at one clock after its position-wise input map (in → H).
public struct S4Stage: Sendable {
    public let clock: StageClock
    public let encoder: LinearMap
    public let layers: [S4Layer]

    public init(clock: StageClock, encoder: LinearMap, layers: [S4Layer]) {
        self.clock = clock; self.encoder = encoder; self.layers = layers
    }

    public var width: Int { encoder.outputCount }
    public var inputWidth: Int { encoder.inputCount }
}

/// The immutable weights of an S4 classifier (docs/model-format.md): stages, the frame pooling
/// between the input-rate stage and the frame stages, and the head. Per-stream state lives in
/// `RecurrentState`; discretisation for a sampling rate lives in `RecurrentNetwork` and
/// `ConvolutionNetwork`, so one model serves any number of streams at any rates.
public struct S4Model: Sendable {
    public let metadata: ModelMetadata
    public let stages: [S4Stage]
    /// Between stage 0 and stage 1; nil for a one-stage network.
    public let pooling: FramePooling?
    public let finalNorm: Normalization
    public let decoder: LinearMap

    public init(
        metadata: ModelMetadata, stages: [S4Stage], pooling: FramePooling?, finalNorm: Normalization,
        decoder: LinearMap
    ) {
        precondition(!stages.isEmpty && (stages.count == 1) == (pooling == nil))
        self.metadata = metadata; self.stages = stages; self.pooling = pooling
        self.finalNorm = finalNorm; self.decoder = decoder
    }

    public var labels: [String] { metadata.labels }

    /// Δ for input at `sampleRate`, for a stage on the input clock: Δ_train · f_train / f
    /// (docs/s4-reference.md §5). A, B, C, D are continuous-time and unchanged; only Ā and B̄ follow
    /// the rate. Frame stages keep their Δ (scale 1).
    public func stepScale(forSampleRate sampleRate: Double, clock: StageClock = .input) -> Double {
        clock == .input ? Double(metadata.sampleRate) / sampleRate : 1
    }

    /// Samples in one classification window at `sampleRate`.
    public func windowLength(forSampleRate sampleRate: Double) -> Int {
        max(1, Int((metadata.clipSeconds * sampleRate).rounded()))
    }

    /// Parameter count as stored (complex values count twice).
    public var parameterCount: Int {
        var count = decoder.weight.count + decoder.bias.count + 2 * finalNorm.scale.count
        if let pooling { count += 2 * pooling.norm.scale.count }
        for stage in stages {
            count += stage.encoder.weight.count + stage.encoder.bias.count
            for layer in stage.layers {
                if case .block(let block) = layer {
                    count += 2 * stage.width + block.output.weight.count + block.output.bias.count
                }
                for channel in layer.channels {
                    count +=
                        2 + 2 * (channel.lambda.count + channel.b.count + channel.c.count) + 2 * channel.p.count
                        * channel.modeCount
                }
            }
        }
        return count
    }
}
