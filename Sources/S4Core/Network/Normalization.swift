import Numerics

/// The pre-norm of each block and the final norm, applied per time step over the H features.
/// LayerNorm normalises each row (biased variance); BatchNorm in eval mode is a fixed per-feature
/// affine map, so both stream sample by sample.
public struct Normalization: Sendable {
    public enum Kind: Sendable {
        case layer(epsilon: Float)
        case batch
    }

    public let kind: Kind
    /// LayerNorm: γ. BatchNorm: γ/√(running_var + ε).
    let scale: [Float]
    /// LayerNorm: β. BatchNorm: β − running_mean·γ/√(running_var + ε).
    let shift: [Float]

    public static func layer(weight: [Float], bias: [Float], epsilon: Float) -> Normalization {
        Normalization(kind: .layer(epsilon: epsilon), scale: weight, shift: bias)
    }

    public static func batch(
        weight: [Double], bias: [Double], runningMean: [Double], runningVariance: [Double],
        epsilon: Double
    ) -> Normalization {
        let scale = zip(weight, runningVariance).map { $0 / ($1 + epsilon).squareRoot() }
        let shift = (0..<weight.count).map { bias[$0] - runningMean[$0] * scale[$0] }
        return Normalization(kind: .batch, scale: scale.map(Float.init), shift: shift.map(Float.init))
    }

    /// output[t, :] = Norm(input[t, :]) for `rows` rows of `scale.count` features.
    func apply(_ input: UnsafePointer<Float>, to output: UnsafeMutablePointer<Float>, rows: Int) {
        let width = scale.count
        scale.withUnsafeBufferPointer { scale in
            shift.withUnsafeBufferPointer { shift in
                for t in 0..<rows {
                    let x = input + t &* width, y = output + t &* width
                    switch kind {
                    case .batch:
                        for j in 0..<width { y[j] = Relaxed.multiplyAdd(x[j], scale[j], shift[j]) }
                    case .layer(let epsilon):
                        var sum: Float = 0
                        for j in 0..<width { sum = Relaxed.sum(sum, x[j]) }
                        let mean = sum / Float(width)
                        var squares: Float = 0
                        for j in 0..<width {
                            let centred = x[j] - mean
                            squares = Relaxed.multiplyAdd(centred, centred, squares)
                        }
                        let inverse = 1 / (squares / Float(width) + epsilon).squareRoot()
                        for j in 0..<width { y[j] = Relaxed.multiplyAdd((x[j] - mean) * inverse, scale[j], shift[j]) }
                    }
                }
            }
        }
    }
}
