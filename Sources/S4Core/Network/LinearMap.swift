import COpenBLAS

/// A position-wise affine map y = W x + b applied to every row (time step) of a [T × in] buffer.
/// For a chunk of T > 1 steps these are matrix products (BLAS sgemm), one per slab of outputs.
public struct LinearMap: Sendable {
    /// Row-major [out × in].
    public let weight: [Float]
    public let bias: [Float]
    public let inputCount: Int
    public let outputCount: Int

    public init(weight: [Float], bias: [Float], inputCount: Int, outputCount: Int) {
        precondition(weight.count == inputCount * outputCount && bias.count == outputCount)
        _ = singleThreadedBLAS
        self.weight = weight; self.bias = bias; self.inputCount = inputCount; self.outputCount = outputCount
    }

    func apply(_ input: UnsafePointer<Float>, to output: UnsafeMutablePointer<Float>, rows: Int) {
        if inputCount == 1 {
            // One input feature (a filter bank's encoder, fed samples): y = w x + b row by row,
            // without a BLAS call per sample.
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    for t in 0..<rows {
                        let x = input[t], y = output + t &* outputCount
                        for j in 0..<outputCount { y[j] = b[j] + w[j] * x }
                    }
                }
            }
            return
        }
        if rows == 1 {
            // One sample: a matrix-vector product, without sgemm's packing overhead.
            output.update(from: bias, count: outputCount)
            cblas_sgemv(
                CblasRowMajor, CblasNoTrans, Int32(outputCount), Int32(inputCount), 1, weight, Int32(inputCount),
                input, 1, 1, output, 1)
            return
        }
        for t in 0..<rows {
            (output + t &* outputCount).update(from: bias, count: outputCount)
        }
        weight.withUnsafeBufferPointer { weight in
            var first = 0
            while first < outputCount {
                let n = min(Self.slabWidth, outputCount - first)
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(inputCount), 1, input,
                    Int32(inputCount), weight.baseAddress! + first &* inputCount, Int32(inputCount), 1, output + first,
                    Int32(outputCount))
                first += n
            }
        }
    }

    /// Outputs per sgemm call over several rows. For a few rows (the frames of one chunk) OpenBLAS
    /// spends as long copying a whole weight matrix into its packed layout as multiplying; a slab
    /// this narrow it multiplies in place (its small-matrix kernels), which halved the bundled
    /// model's map time at 8 frames a chunk.
    static let slabWidth = 64
}

extension LinearMap {
    /// The core's fp32 multiply-add rate in FLOP/s as far as code reaches it: a single-threaded
    /// sgemm of two 384 × 384 matrices (in cache), the fastest of 20 as `time` measures them.
    /// What `s4listen bench` states its rates against; OpenBLAS uses the widest vectors the core
    /// has, the recurrence 256-bit ones.
    public static func fmaPeak(time: (() -> Void) -> Double) -> Double {
        _ = singleThreadedBLAS
        let n = 384
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        let seconds = (0..<20).map { _ in
            time {
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b,
                    Int32(n), 0, &c, Int32(n))
            }
        }.min()!
        return 2 * Double(n * n * n) / seconds
    }
}

/// BLAS runs on the caller's thread: the daemon's budget is one core, and the products here are
/// too small to gain from BLAS threads.
private let singleThreadedBLAS: Void = openblas_set_num_threads(1)
