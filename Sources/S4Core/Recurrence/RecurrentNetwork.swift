/// The whole network in recurrent mode at one sampling rate: immutable, shared by any number of
/// streams, each with its own `RecurrentState`. Stage 0 steps once per sample with Δ rescaled by
/// f_train/f; the frame stages step once per completed frame with their own Δ.
public struct RecurrentNetwork: Sendable {
    public let model: S4Model
    public let sampleRate: Double
    /// Per stage, per layer.
    let stages: [[DiscreteLayer]]
    /// Frame boundaries at this rate (nil for one stage).
    let boundaries: FrameBoundaries?

    public init(model: S4Model, sampleRate: Double) {
        self.model = model
        self.sampleRate = sampleRate
        stages = model.stages.map { stage in
            let scale = model.stepScale(forSampleRate: sampleRate, clock: stage.clock)
            return stage.layers.map { DiscreteLayer(channels: $0.channels, stepScale: scale) }
        }
        boundaries = model.pooling?.boundaries(sampleRate: sampleRate)
    }

    /// A zero state for one stream. `chunkCapacity` bounds how many samples are processed per
    /// pass, so how many frames the frame stages take at once (and their scratch memory); any
    /// input length is split into such chunks.
    public func makeState(chunkCapacity: Int = 160) -> RecurrentState {
        RecurrentState(network: self, chunkCapacity: chunkCapacity)
    }

    /// Feeds samples through the network, carrying the state; accumulates the head's mean.
    public func process(_ samples: UnsafeBufferPointer<Float>, state: RecurrentState) {
        var offset = 0
        while offset < samples.count {
            let rows = min(state.chunkCapacity, samples.count - offset)
            processChunk(samples.baseAddress! + offset, rows: rows, state: state)
            offset += rows
        }
    }

    public func process(_ samples: [Float], state: RecurrentState) {
        samples.withUnsafeBufferPointer { process($0, state: state) }
    }

    /// Feeds samples through a network with a streaming head, carrying the state through the
    /// whole stream: `frame` receives the logits of every frame completed, in order (a buffer
    /// valid during the call; the mean over the head's window where it has one). Chunks of any
    /// size give the same frames as single samples.
    public func stream(
        _ samples: UnsafeBufferPointer<Float>, state: RecurrentState, frame: (UnsafeBufferPointer<Float>) -> Void
    ) {
        precondition(state.pooler != nil, "a streaming head runs on frame stages")
        let k = model.decoder.outputCount
        let normed = state.buffers[state.buffers.count - 1].normed
        var offset = 0
        while offset < samples.count {
            let rows = min(state.chunkCapacity, samples.count - offset)
            let frames = processChunk(samples.baseAddress! + offset, rows: rows, state: state)
            offset += rows
            guard frames > 0 else { continue }
            model.decoder.apply(normed, to: state.frameLogits, rows: frames)
            for f in 0..<frames {
                let logits = state.frameLogits + f &* k
                if let window = state.logitWindow {
                    window.add(logits)
                    frame(UnsafeBufferPointer(start: window.mean, count: k))
                } else {
                    frame(UnsafeBufferPointer(start: logits, count: k))
                }
            }
        }
    }

    /// One chunk through every stage: stage 0 in slices of at most `inputSliceCapacity` samples
    /// (its [T × H] buffers then stay in the first-level cache however long the chunk), then the
    /// frames the whole chunk completed through the frame stages together (one matrix product per
    /// map for all of them). Returns that number of frames, left in the last stage's `normed`
    /// (0 for one stage, whose features go straight to the head's mean).
    @discardableResult
    private func processChunk(_ samples: UnsafePointer<Float>, rows: Int, state: RecurrentState) -> Int {
        var frames = 0
        var offset = 0
        while offset < rows {
            let slice = min(state.buffers[0].capacity, rows - offset)
            model.standardize(samples + offset, into: state.input, count: slice)
            run(stage: 0, state.input, rows: slice, state: state)
            if let pooler = state.pooler {
                frames += pooler.add(state.buffers[0].hidden, rows: slice, firstFrame: frames)
            } else {
                finish(state.buffers[0].hidden, rows: slice, state: state)
            }
            offset += slice
        }
        state.advance(samples: rows)
        guard let pooler = state.pooler, frames > 0 else { return 0 }
        var input = UnsafePointer(pooler.frames)
        for s in 1..<stages.count {
            run(stage: s, input, rows: frames, state: state)
            input = UnsafePointer(state.buffers[s].hidden)
        }
        finish(input, rows: frames, state: state)
        return frames
    }

    private func run(stage s: Int, _ input: UnsafePointer<Float>, rows: Int, state: RecurrentState) {
        let ssm = RecurrentSSM(
            layers: stages[s], states: state.ssmStates[s], scratch: state.scratch,
            width: model.stages[s].width)
        model.stages[s].forward(input, rows: rows, buffers: state.buffers[s], ssm: ssm)
    }

    /// The head's per-step part: final norm, added to the mean.
    private func finish(_ output: UnsafePointer<Float>, rows: Int, state: RecurrentState) {
        let buffers = state.buffers[state.buffers.count - 1]
        model.finalNorm.apply(output, to: buffers.normed, rows: rows)
        state.accumulate(buffers.normed, rows: rows)
    }

    /// Logits for the input seen since the last reset: Decoder(mean of the final features).
    public func logits(_ state: RecurrentState) -> [Float] {
        model.decode(pooledMean: state.pooledMean())
    }
}

/// SSM(u) by the recurrence, carrying each channel's state in place: chunks of any size give the
/// same result as single steps.
struct RecurrentSSM: SSMOperator {
    let layers: [DiscreteLayer]
    let states: [UnsafeMutablePointer<DiscreteLayer.Lanes>]
    let scratch: UnsafeMutablePointer<DiscreteLayer.Lanes>
    let width: Int

    func apply(layer i: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int) {
        let layer = layers[i]
        var block = 0
        while block < layer.blockCount {
            let firstChannel = block &* DiscreteLayer.laneCount, state = states[i] + block &* layer.stateStride
            if layer.hasWideStep && firstChannel &+ 2 &* DiscreteLayer.laneCount <= layer.width {
                layer.runPair(
                    block: block, state: state, input: input + firstChannel, output: output + firstChannel,
                    stride: width, count: rows)
                block &+= 2
            } else {
                layer.run(
                    block: block, state: state, scratch: scratch, input: input + firstChannel,
                    output: output + firstChannel, stride: width, count: rows)
                block &+= 1
            }
        }
    }
}
