import Numerics

/// The Woodbury form of the bilinear DPLR discretisation (docs/s4-reference.md §2, §4.1), in Double.
///
/// With A = Λ − p pᴴ on the conjugate-expanded state (p = [P; P̄]):
/// (2/Δ + A) x = E ⊙ x − Σ_r P_r·2Re(P_rᴴ x), E = 2/Δ + Λ, and
/// (2/Δ − A)⁻¹ s = D ⊙ (s − Σ_r P_r·2Re(R̃_r s)), D = 1/(2/Δ − Λ), R̃ = K⁻¹ P̄ D,
/// K = I + 2Re(Pᴴ D P) a real r × r matrix. Applying Ā or B̄ costs O(N·r). (D here is the
/// diagonal of the Woodbury inverse, `inverseDiagonal`, not the channel's skip term `d`.)
public struct DPLRBilinear: Sendable {
    public let e: [Complex<Double>]
    /// D = 1/(2/Δ − Λ), the diagonal part of (2/Δ − A)⁻¹.
    public let inverseDiagonal: [Complex<Double>]
    public let p: [[Complex<Double>]]
    /// R̃ = K⁻¹ P̄ ⊙ D, rank rows.
    public let rTilde: [[Complex<Double>]]

    init(lambda: [Complex<Double>], p: [[Complex<Double>]], stepSize delta: Double) {
        let twoOverDelta = 2 / delta
        e = lambda.map { twoOverDelta + $0 }
        let inverseDiagonal = lambda.map { 1 / (twoOverDelta - $0) }
        self.inverseDiagonal = inverseDiagonal
        self.p = p
        let rank = p.count
        var k = [Double](repeating: 0, count: rank * rank)
        for q in 0..<rank {
            for r in 0..<rank {
                var sum = Complex<Double>.zero
                for m in lambda.indices { sum = sum + p[q][m].conjugate * inverseDiagonal[m] * p[r][m] }
                k[q * rank + r] = (q == r ? 1 : 0) + 2 * sum.real
            }
        }
        let kInverse = RealMatrix.inverse(k, size: rank)
        rTilde = (0..<rank).map { r in
            lambda.indices.map { m in
                var sum = Complex<Double>.zero
                for q in 0..<rank { sum = sum + kInverse[r * rank + q] * p[q][m].conjugate }
                return sum * inverseDiagonal[m]
            }
        }
    }

    /// (2/Δ + A) x.
    func forward(_ x: [Complex<Double>]) -> [Complex<Double>] {
        var s = zip(e, x).map { $0 * $1 }
        for pr in p {
            var dot = 0.0
            for m in x.indices { dot += pr[m].real * x[m].real + pr[m].imaginary * x[m].imaginary }
            for m in s.indices { s[m] = s[m] - 2 * dot * pr[m] }
        }
        return s
    }

    /// (2/Δ − A)⁻¹ s.
    func inverse(_ s: [Complex<Double>]) -> [Complex<Double>] {
        var t = s
        for (pr, rr) in zip(p, rTilde) {
            var dot = 0.0
            for m in s.indices { dot += rr[m].real * s[m].real - rr[m].imaginary * s[m].imaginary }
            for m in t.indices { t[m] = t[m] - 2 * dot * pr[m] }
        }
        return zip(inverseDiagonal, t).map { $0 * $1 }
    }
}
