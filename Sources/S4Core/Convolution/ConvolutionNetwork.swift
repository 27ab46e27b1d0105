import Dispatch

/// What a forward pass produced, for inspection and tests: the output of every stage's encoder
/// and of each of its layers ([T × H] each, stages in order), the pooled frames ([F × H0], empty
/// for one stage), the final features and the logits.
public struct NetworkTrace: Sendable {
    public var residuals: [[Float]] = []
    public var frames: [Float] = []
    public var finalFeatures: [Float] = []
    public var logits: [Float] = []
}

/// The whole network in convolution mode for windows of up to L samples at one sampling rate.
/// Each stage has its own kernels K̄ (stage 0: L samples, Δ rescaled by f_train/f; frame stages:
/// the frames in L samples, Δ unchanged), computed once at set-up in Double and kept as Float
/// spectra. This is the batch/file mode and the cross-check of the recurrence.
public struct ConvolutionNetwork: Sendable {
    public let model: S4Model
    public let sampleRate: Double
    public let length: Int
    private let stages: [ConvolutionSSM]
    private let boundaries: FrameBoundaries?

    /// - Parameter length: stage 0's kernel length L; defaults to the model's window at `sampleRate`.
    public init(model: S4Model, sampleRate: Double, length: Int? = nil) {
        self.model = model
        self.sampleRate = sampleRate
        let length = length ?? model.windowLength(forSampleRate: sampleRate)
        self.length = length
        let boundaries = model.pooling?.boundaries(sampleRate: sampleRate)
        self.boundaries = boundaries
        let frames = max(1, boundaries?.completeFrames(in: length) ?? 0)
        stages = model.stages.map { stage in
            let scale = model.stepScale(forSampleRate: sampleRate, clock: stage.clock)
            let steps = stage.clock == .input ? length : frames
            return ConvolutionSSM(
                convolutions: stage.layers.map {
                    FFTConvolution(kernels: Self.kernels($0.channels, stepScale: scale, length: steps), length: steps)
                },
                skips: stage.layers.map { $0.channels.map { Float($0.d) } })
        }
    }

    /// All channels' kernels of one layer, computed in parallel (set-up only).
    static func kernels(_ channels: [SSMChannel], stepScale: Double, length: Int) -> [[Double]] {
        let results = KernelResults(count: channels.count)
        DispatchQueue.concurrentPerform(iterations: channels.count) { i in
            results.store(i, channels[i].convolutionKernel(stepSize: channels[i].stepSize * stepScale, length: length))
        }
        return results.values
    }

    /// Logits for one window of at most L samples (mean pooling over the steps given).
    public func logits(_ samples: [Float]) -> [Float] {
        trace(samples, keepResiduals: false).logits
    }

    public func trace(_ samples: [Float], keepResiduals: Bool = true) -> NetworkTrace {
        precondition(!samples.isEmpty && samples.count <= length, "a window holds 1 to \(length) samples")
        var trace = NetworkTrace()
        var rows = samples.count
        let input = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        defer { input.deallocate() }
        samples.withUnsafeBufferPointer { model.standardize($0.baseAddress!, into: input, count: rows) }
        var stageInput = UnsafePointer(input)
        var buffers: [StageBuffers] = []
        // Holds the pooled frames that stage 1 reads.
        var pooler: FramePooler?
        for (s, stage) in model.stages.enumerated() {
            let stageBuffers = StageBuffers(capacity: max(rows, 1), width: stage.width)
            buffers.append(stageBuffers)
            let h = stage.width, count = rows
            let observe: ((Int, UnsafePointer<Float>) -> Void)? =
                keepResiduals
                ? { _, x in trace.residuals.append(Array(UnsafeBufferPointer(start: x, count: count * h))) } : nil
            stage.forward(stageInput, rows: rows, buffers: stageBuffers, ssm: stages[s], observe: observe)
            stageInput = UnsafePointer(stageBuffers.hidden)
            if s == 0, let pooling = model.pooling, let boundaries {
                let framePooler = FramePooler(pooling: pooling, boundaries: boundaries, width: h, chunkCapacity: rows)
                pooler = framePooler
                rows = framePooler.add(stageBuffers.hidden, rows: rows, firstFrame: 0)
                trace.frames = Array(UnsafeBufferPointer(start: framePooler.frames, count: rows * h))
                stageInput = UnsafePointer(framePooler.frames)
            }
        }
        let last = buffers[buffers.count - 1], width = last.width
        model.finalNorm.apply(stageInput, to: last.normed, rows: rows)
        trace.finalFeatures = Array(UnsafeBufferPointer(start: last.normed, count: rows * width))
        var pool = MeanPool(width: width)
        pool.add(last.normed, rows: rows)
        trace.logits = model.decode(pooledMean: pool.mean())
        withExtendedLifetime(pooler) {}
        return trace
    }
}

/// SSM(u) as a causal FFT convolution with each channel's kernel, plus D·u.
struct ConvolutionSSM: SSMOperator, @unchecked Sendable {
    let convolutions: [FFTConvolution]
    let skips: [[Float]]

    func apply(layer i: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int) {
        convolutions[i].apply(input, to: output, rows: rows, skip: skips[i])
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
