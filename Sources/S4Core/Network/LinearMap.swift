import COpenBLAS

/// A position-wise affine map y = W x + b applied to every row (time step) of a [T × in] buffer.
/// For a chunk of T > 1 samples this is one matrix product (BLAS sgemm).
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
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outputCount), Int32(inputCount),
            1, input, Int32(inputCount), weight, Int32(inputCount), 1, output, Int32(outputCount))
    }
}

/// BLAS runs on the caller's thread: the daemon's budget is one core, and the products here are
/// too small to gain from BLAS threads.
private let singleThreadedBLAS: Void = openblas_set_num_threads(1)
