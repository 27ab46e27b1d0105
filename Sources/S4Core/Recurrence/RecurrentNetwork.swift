/// The whole network in recurrent mode at one sampling rate: immutable, shared by any number of
/// streams, each with its own `RecurrentState`. Δ is rescaled by f_train/f at set-up.
public struct RecurrentNetwork: Sendable {
    public let model: S4Model
    public let sampleRate: Double
    let layers: [DiscreteLayer]

    public init(model: S4Model, sampleRate: Double) {
        self.model = model
        self.sampleRate = sampleRate
        let scale = model.stepScale(forSampleRate: sampleRate)
        layers = model.blocks.map { DiscreteLayer(channels: $0.channels, stepScale: scale) }
    }

    /// A zero state for one stream. `chunkCapacity` bounds how many samples are processed per
    /// pass (and so the scratch memory); any input length is split into such chunks.
    public func makeState(chunkCapacity: Int = 160) -> RecurrentState {
        RecurrentState(layers: layers, width: model.width, chunkCapacity: chunkCapacity)
    }

    /// Feeds samples through the network, carrying the state; accumulates the pooled features.
    public func process(_ samples: UnsafeBufferPointer<Float>, state: RecurrentState) {
        var offset = 0
        while offset < samples.count {
            let rows = min(state.buffers.capacity, samples.count - offset)
            processChunk(samples.baseAddress! + offset, rows: rows, state: state)
            offset += rows
        }
    }

    public func process(_ samples: [Float], state: RecurrentState) {
        samples.withUnsafeBufferPointer { process($0, state: state) }
    }

    private func processChunk(_ samples: UnsafePointer<Float>, rows: Int, state: RecurrentState) {
        let h = model.width
        model.forward(samples, rows: rows, buffers: state.buffers, ssm: { i, input, output in
            let layer = layers[i]
            let stateBase = state.ssmStates[i]
            for block in 0..<layer.blockCount {
                let firstChannel = block &* DiscreteLayer.laneCount
                layer.run(block: block, state: stateBase + block &* layer.stateStride, scratch: state.scratch,
                          input: input + firstChannel, output: output + firstChannel, stride: h, count: rows)
            }
        })
        state.accumulate(rows: rows)
    }

    /// Logits for the samples seen since the last reset: Decoder(mean of the final features).
    public func logits(_ state: RecurrentState) -> [Float] {
        model.decode(pooledMean: state.pooledMean())
    }
}
