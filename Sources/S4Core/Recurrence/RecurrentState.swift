/// The mutable state of one stream in recurrent mode: the SSM state of every channel of every
/// layer, the running sum for mean pooling, and fixed scratch buffers. Its memory is fixed at
/// creation and does not grow with the stream. Not thread-safe: one stream, one state.
public final class RecurrentState {
    /// Per layer: blocks of eight channels × 2M lanes.
    let ssmStates: [UnsafeMutablePointer<DiscreteLayer.Lanes>]
    private let stateSizes: [Int]
    let scratch: UnsafeMutablePointer<DiscreteLayer.Lanes>
    let buffers: NetworkBuffers
    private var pool: MeanPool
    /// Samples seen since the last reset.
    public var sampleCount: Int { pool.count }

    init(layers: [DiscreteLayer], width: Int, chunkCapacity: Int) {
        precondition(chunkCapacity > 0)
        stateSizes = layers.map { $0.stateStride * $0.blockCount }
        ssmStates = stateSizes.map { .allocate(capacity: $0) }
        scratch = .allocate(capacity: max(1, layers.map(\.scratchCount).max() ?? 1))
        buffers = NetworkBuffers(capacity: chunkCapacity, width: width)
        pool = MeanPool(width: width)
        reset()
    }

    deinit {
        ssmStates.forEach { $0.deallocate() }
        scratch.deallocate()
    }

    /// Back to the zero state the model was trained from (start of a window).
    public func reset() {
        for (pointer, size) in zip(ssmStates, stateSizes) { pointer.initialize(repeating: .zero, count: size) }
        pool.reset()
    }

    /// Adds the final features left in the buffers to the pooling sum.
    func accumulate(rows: Int) { pool.add(buffers.normed, rows: rows) }

    func pooledMean() -> [Float] { pool.mean() }
}
