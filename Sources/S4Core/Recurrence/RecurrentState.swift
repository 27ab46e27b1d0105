/// The mutable state of one stream in recurrent mode: the SSM state of every channel of every
/// layer of every stage, the partial frame being pooled, the head's running sum or a streaming
/// head's window of recent logits, and fixed scratch buffers. Its memory is fixed at creation
/// and does not grow with the stream. Not thread-safe: one stream, one state.
public final class RecurrentState {
    /// Per stage, per layer: blocks of eight channels × 2M lanes.
    let ssmStates: [[UnsafeMutablePointer<DiscreteLayer.Lanes>]]
    private let stateSizes: [[Int]]
    let scratch: UnsafeMutablePointer<DiscreteLayer.Lanes>
    /// The most samples one pass takes (`RecurrentNetwork.makeState`).
    let chunkCapacity: Int
    /// Standardised samples of one slice of a chunk, stage 0's input.
    let input: UnsafeMutablePointer<Float>
    /// Per stage: buffers for a slice of a chunk (stage 0, in samples) or for the frames of a
    /// whole chunk (the frame stages).
    let buffers: [StageBuffers]
    /// Between stage 0 and stage 1 (nil for one stage), with the frames it completed in a chunk.
    let pooler: FramePooler?
    private var head: MeanPool
    /// A streaming head's logits for the frames of one chunk, [frames × K].
    let frameLogits: UnsafeMutablePointer<Float>
    /// A streaming head's window over its frames' logits (nil without one, or for a window of 1).
    let logitWindow: LogitWindow?
    /// Samples seen since the last reset.
    public private(set) var sampleCount = 0

    init(network: RecurrentNetwork, chunkCapacity: Int) {
        precondition(chunkCapacity > 0)
        self.chunkCapacity = chunkCapacity
        let sliceCapacity = min(chunkCapacity, Self.inputSliceCapacity)
        let model = network.model
        stateSizes = network.stages.map { $0.map { $0.stateStride * $0.blockCount } }
        ssmStates = stateSizes.map { $0.map { .allocate(capacity: $0) } }
        scratch = .allocate(capacity: max(1, network.stages.joined().map(\.scratchCount).max() ?? 1))
        input = .allocate(capacity: sliceCapacity)
        if let pooling = model.pooling, let boundaries = network.boundaries {
            let pooler = FramePooler(
                pooling: pooling, boundaries: boundaries, width: model.stages[0].width,
                chunkCapacity: chunkCapacity)
            self.pooler = pooler
            buffers = model.stages.indices.map {
                StageBuffers(capacity: $0 == 0 ? sliceCapacity : pooler.frameCapacity, width: model.stages[$0].width)
            }
        } else {
            pooler = nil
            buffers = [StageBuffers(capacity: sliceCapacity, width: model.stages[0].width)]
        }
        head = MeanPool(width: model.stages[model.stages.count - 1].width)
        frameLogits = .allocate(capacity: (pooler?.frameCapacity ?? 1) * model.decoder.outputCount)
        let window = model.metadata.headWindowFrames
        logitWindow = window > 1 ? LogitWindow(frames: window, width: model.decoder.outputCount) : nil
        reset()
    }

    /// Samples stage 0 runs at once: 128 rows of its widest buffers (the bank's 64 channels) are
    /// 32 KB, within a first-level data cache.
    static let inputSliceCapacity = 128

    deinit {
        ssmStates.joined().forEach { $0.deallocate() }
        scratch.deallocate()
        input.deallocate()
        frameLogits.deallocate()
    }

    /// Back to the zero state the model was trained from (start of a window).
    public func reset() {
        for (pointers, sizes) in zip(ssmStates, stateSizes) {
            for (pointer, size) in zip(pointers, sizes) { pointer.initialize(repeating: .zero, count: size) }
        }
        pooler?.reset()
        head.reset()
        logitWindow?.reset()
        sampleCount = 0
    }

    func advance(samples: Int) { sampleCount += samples }

    /// Adds `rows` final features to the head's mean.
    func accumulate(_ features: UnsafePointer<Float>, rows: Int) { head.add(features, rows: rows) }

    func pooledMean() -> [Float] { head.mean() }
}
