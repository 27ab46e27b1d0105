import Numerics

/// The S4D (Vandermonde) kernel K̄_k = 2·Re Σ_m C_m B̄_m Ā_m^k, k < L (docs/s4-reference.md §3.2),
/// in Double. No C̃ correction: the infinite kernel is simply truncated, which is exactly the
/// recurrence over L steps from a zero state.
public enum DiagonalKernel {
    public static func compute(_ channel: SSMChannel, stepSize delta: Double, length: Int) -> [Double] {
        precondition(!channel.isLowRank)
        let discrete = channel.discretized(stepSize: delta)
        guard case .diagonal(let a) = discrete.transition else { preconditionFailure() }
        var kernel = [Double](repeating: 0, count: length)
        for m in 0..<channel.modeCount {
            var term = channel.c[m] * discrete.bBar[m]
            for k in 0..<length {
                kernel[k] += 2 * term.real
                term = term * a[m]
            }
        }
        return kernel
    }
}

extension SSMChannel {
    /// The convolution kernel of length L at step Δ (Cauchy + Woodbury for DPLR, Vandermonde
    /// for diagonal), without the skip term D.
    public func convolutionKernel(stepSize delta: Double, length: Int) -> [Double] {
        isLowRank
            ? DPLRKernel.compute(self, stepSize: delta, length: length)
            : DiagonalKernel.compute(self, stepSize: delta, length: length)
    }
}
