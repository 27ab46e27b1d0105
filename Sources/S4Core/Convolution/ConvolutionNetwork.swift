import Dispatch

/// What a forward pass produced, for inspection and tests: the residual stream after the encoder
/// and after each block ([T × H] each), the final features and the logits.
public struct NetworkTrace: Sendable {
    public var residuals: [[Float]] = []
    public var finalFeatures: [Float] = []
    public var logits: [Float] = []
}

/// The whole network in convolution mode for windows of up to L samples at one sampling rate.
/// Kernels K̄ (length L, Δ rescaled by f_train/f) are computed once at set-up in Double and
/// kept as Float spectra. This is the batch/file mode and the cross-check of the recurrence.
public struct ConvolutionNetwork: Sendable {
    public let model: S4Model
    public let sampleRate: Double
    public let length: Int
    private let convolutions: [FFTConvolution]
    private let skips: [[Float]]

    /// - Parameter length: kernel length L; defaults to the model's window at `sampleRate`.
    public init(model: S4Model, sampleRate: Double, length: Int? = nil) {
        self.model = model
        self.sampleRate = sampleRate
        let length = length ?? model.windowLength(forSampleRate: sampleRate)
        self.length = length
        let scale = model.stepScale(forSampleRate: sampleRate)
        convolutions = model.blocks.map { block in
            let kernels = ConvolutionNetwork.kernels(block.channels, stepScale: scale, length: length)
            return FFTConvolution(kernels: kernels, length: length)
        }
        skips = model.blocks.map { $0.channels.map { Float($0.d) } }
    }

    /// All channels' kernels of one layer, computed in parallel (set-up only).
    static func kernels(_ channels: [SSMChannel], stepScale: Double, length: Int) -> [[Double]] {
        let results = KernelResults(count: channels.count)
        DispatchQueue.concurrentPerform(iterations: channels.count) { i in
            results.store(i, channels[i].convolutionKernel(step: channels[i].step * stepScale, length: length))
        }
        return results.values
    }

    /// Logits for one window of at most L samples (mean pooling over the samples given).
    public func logits(_ samples: [Float]) -> [Float] {
        trace(samples, keepResiduals: false).logits
    }

    public func trace(_ samples: [Float], keepResiduals: Bool = true) -> NetworkTrace {
        precondition(!samples.isEmpty && samples.count <= length, "a window holds 1 to \(length) samples")
        let rows = samples.count, h = model.width
        let buffers = NetworkBuffers(capacity: rows, width: h)
        var trace = NetworkTrace()
        samples.withUnsafeBufferPointer { input in
            model.forward(input.baseAddress!, rows: rows, buffers: buffers, ssm: { i, u, y in
                convolutions[i].apply(u, to: y, rows: rows, skip: skips[i])
            }, observe: keepResiduals ? { _, x in trace.residuals.append(Array(UnsafeBufferPointer(start: x, count: rows * h))) } : nil)
        }
        trace.finalFeatures = Array(UnsafeBufferPointer(start: buffers.normed, count: rows * h))
        var pool = MeanPool(width: h)
        pool.add(buffers.normed, rows: rows)
        trace.logits = model.decode(pooledMean: pool.mean())
        return trace
    }
}

/// Per-channel results written from `concurrentPerform`, each index by exactly one iteration.
private final class KernelResults: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<[Double]>
    private let count: Int
    init(count: Int) {
        self.count = count
        storage = .allocate(capacity: count)
        storage.initialize(repeating: [], count: count)
    }
    deinit {
        storage.deinitialize(count: count)
        storage.deallocate()
    }
    func store(_ index: Int, _ value: [Double]) { storage[index] = value }
    var values: [[Double]] { Array(UnsafeBufferPointer(start: storage, count: count)) }
}
