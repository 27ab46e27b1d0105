import CFFTW3
import Foundation
import Numerics

/// The S4 convolution kernel K̄_k = Cᵀ Ā^k B̄, k < L, of a DPLR channel (docs/s4-reference.md §3.1),
/// computed in Double without ever forming Ā:
///
/// 1. the truncated generating function at the roots of unity ω_j equals C̃ᵀ(I − Āω_j)⁻¹B̄ with
///    C̃ = (I − Ā^L)ᵀ C;
/// 2. the bilinear transform turns (I − Āω)⁻¹B̄ into (2/(1+ω))(g(ω) − A)⁻¹B;
/// 3. Woodbury reduces (g − Λ + PPᴴ)⁻¹ to Cauchy sums Σ a_n b_n /(g − λ_n) over both halves;
/// 4. an inverse real FFT of length L returns K̄.
///
/// The factor 2/(1+ω) is folded into the Cauchy terms, R′_n = 2Δ/(2(1−ω) − Δλ_n(1+ω)), so the
/// node ω = −1 (even L) needs no special case.
public enum DPLRKernel {
    public static func compute(_ channel: SSMChannel, stepSize delta: Double, length: Int) -> [Double] {
        precondition(channel.isLowRank && length > 0)
        let discrete = channel.discretized(stepSize: delta)
        let cTilde = discrete.lengthCorrectedC(length: length)
        let rank = channel.p.count
        let modes = channel.modeCount
        let lambda = channel.lambda, b = channel.b, p = channel.p

        // Per-mode numerators X; each mode n contributes X·R′(λ_n) + conj(X)·R′(λ̄_n).
        let cb = (0..<modes).map { cTilde[$0] * b[$0] }
        let cp = (0..<rank).map { r in (0..<modes).map { cTilde[$0] * p[r][$0] } }
        let pb = (0..<rank).map { q in (0..<modes).map { p[q][$0].conjugate * b[$0] } }
        let pp = (0..<rank * rank).map { qr in (0..<modes).map { p[qr / rank][$0].conjugate * p[qr % rank][$0] } }

        let nodeCount = length / 2 + 1
        let spectrum = fftw_alloc_complex(nodeCount)!
        let output = fftw_alloc_real(length)!
        defer { fftw_free(spectrum); fftw_free(output) }

        var kCP = [Complex<Double>](repeating: .zero, count: rank)
        var kPB = kCP
        var kPP = [Complex<Double>](repeating: .zero, count: rank * rank)
        for j in 0..<nodeCount {
            let theta = 2 * Double.pi * Double(j) / Double(length)
            let omega = Complex(cos(theta), -sin(theta))
            let oneMinus = 2 * (1 - omega), onePlus = 1 + omega
            var kCB = Complex<Double>.zero
            for r in 0..<rank { kCP[r] = .zero; kPB[r] = .zero }
            for qr in 0..<(rank * rank) { kPP[qr] = .zero }
            for m in 0..<modes {
                let dl = delta * lambda[m]
                let rPlain = reciprocal(oneMinus - dl * onePlus) * (2 * delta)
                let rConj = reciprocal(oneMinus - dl.conjugate * onePlus) * (2 * delta)
                kCB = kCB + cb[m] * rPlain + cb[m].conjugate * rConj
                for r in 0..<rank {
                    kCP[r] = kCP[r] + cp[r][m] * rPlain + cp[r][m].conjugate * rConj
                    kPB[r] = kPB[r] + pb[r][m] * rPlain + pb[r][m].conjugate * rConj
                }
                for qr in 0..<(rank * rank) {
                    kPP[qr] = kPP[qr] + pp[qr][m] * rPlain + pp[qr][m].conjugate * rConj
                }
            }
            // K̂ = k′_CB − k′_CP (I + h·K′_PP)⁻¹ (h·k′_PB), h = (1 + ω)/2.
            let h = onePlus / 2
            var system = (0..<(rank * rank)).map { qr in (qr / rank == qr % rank ? Complex<Double>.one : .zero) + h * kPP[qr] }
            var rhs = kPB.map { h * $0 }
            solveComplex(&system, &rhs, size: rank)
            var value = kCB
            for r in 0..<rank { value = value - kCP[r] * rhs[r] }
            spectrum[j].0 = value.real
            spectrum[j].1 = j == 0 || (length % 2 == 0 && j == nodeCount - 1) ? 0 : value.imaginary
        }
        let plan = fftwPlannerLock.withLock {
            fftw_plan_dft_c2r_1d(Int32(length), spectrum, output, UInt32(FFTW_ESTIMATE))
        }
        fftw_execute(plan)
        fftwPlannerLock.withLock { fftw_destroy_plan(plan) }
        let scale = 1 / Double(length)
        return (0..<length).map { output[$0] * scale }
    }

    @inline(__always)
    static func reciprocal(_ z: Complex<Double>) -> Complex<Double> {
        let norm = z.real * z.real + z.imaginary * z.imaginary
        return Complex(z.real / norm, -z.imaginary / norm)
    }

    /// Solves the small complex system in place (Gaussian elimination with partial pivoting).
    static func solveComplex(_ a: inout [Complex<Double>], _ b: inout [Complex<Double>], size n: Int) {
        for col in 0..<n {
            var pivot = col
            for row in col..<n where a[row * n + col].lengthSquared > a[pivot * n + col].lengthSquared { pivot = row }
            if pivot != col {
                for k in 0..<n { a.swapAt(col * n + k, pivot * n + k) }
                b.swapAt(col, pivot)
            }
            let inv = reciprocal(a[col * n + col])
            for row in (col + 1)..<max(col + 1, n) {
                let factor = a[row * n + col] * inv
                for k in col..<n { a[row * n + k] = a[row * n + k] - factor * a[col * n + k] }
                b[row] = b[row] - factor * b[col]
            }
        }
        for row in stride(from: n - 1, through: 0, by: -1) {
            var sum = b[row]
            for k in (row + 1)..<max(row + 1, n) { sum = sum - a[row * n + k] * b[k] }
            b[row] = sum * reciprocal(a[row * n + row])
        }
    }
}
