import Numerics

/// Initial continuous-time parameters of one SSM: Λ, the low-rank P (empty for diagonal
/// kernels) and B, each with N/2 modes standing for conjugate pairs.
public struct SSMInitialization: Sendable {
    public var lambda: [Complex<Double>]
    public var p: [Complex<Double>]
    public var b: [Complex<Double>]
}

/// HiPPO-LegS and its normal-plus-low-rank (NPLR) form (S4 paper §3; docs/s4-reference.md §1.1–1.2).
public enum HiPPO {
    /// The LegS matrices: A[n,k] = −√(2n+1)√(2k+1) for n > k, −(n+1) on the diagonal, 0 above;
    /// B[n] = √(2n+1); the rank-1 correction P[n] = √(n + ½) that makes A + PPᵀ = −½I + S, S skew.
    /// Row-major N × N.
    public static func legS(stateSize n: Int) -> (a: [Double], b: [Double], p: [Double]) {
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for k in 0...i {
                a[i * n + k] = i == k ? -Double(i + 1) : -(Double(2 * i + 1).squareRoot() * Double(2 * k + 1).squareRoot())
            }
        }
        let b = (0..<n).map { Double(2 * $0 + 1).squareRoot() }
        let p = (0..<n).map { (Double($0) + 0.5).squareRoot() }
        return (a, b, p)
    }

    /// Diagonalises the skew part of HiPPO-LegS with a unitary V (in Double) and keeps the N/2
    /// eigenvalues with negative imaginary part: Λ = −½ + iΩ, P̃ = V*P, B̃ = V*B.
    /// - Parameter bImaginaryClip: clamp Im B̃ to ±clip (the reference's v3/v4 `B_clip`), or nil.
    public static func nplrLegS(stateSize n: Int, bImaginaryClip: Double? = nil) -> SSMInitialization {
        precondition(n > 0 && n % 2 == 0, "the state size N must be even")
        let (a, b, p) = legS(stateSize: n)
        // S = A + PPᵀ + ½I is real skew-symmetric; −iS is Hermitian. Its real symmetric
        // embedding [[Re, −Im], [Im, Re]] = [[0, S], [−S, 0]] has each eigenvalue twice, with
        // eigenvectors [x; y] ↦ x + iy.
        var s = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for k in 0..<n { s[i * n + k] = a[i * n + k] + p[i] * p[k] + (i == k ? 0.5 : 0) } }
        let m = 2 * n
        var embedding = [Double](repeating: 0, count: m * m)
        for i in 0..<n {
            for k in 0..<n {
                embedding[i * m + (n + k)] = s[i * n + k]  // −Im(−iS) = S
                embedding[(n + i) * m + k] = -s[i * n + k]  // Im(−iS) = −S
            }
        }
        let eigen = SymmetricEigen(symmetric: embedding, size: m)
        // Ascending order: the first N values are the N/2 negative frequencies, each twice.
        var lambda: [Complex<Double>] = []
        var pTilde: [Complex<Double>] = []
        var bTilde: [Complex<Double>] = []
        for pair in stride(from: 0, to: n, by: 2) {
            let omega = 0.5 * (eigen.values[pair] + eigen.values[pair + 1])
            let column = eigen.vectors[pair * m..<(pair + 1) * m]
            var vector = (0..<n).map { Complex(column[column.startIndex + $0], column[column.startIndex + n + $0]) }
            let norm = vector.reduce(0.0) { $0 + $1.lengthSquared }.squareRoot()
            vector = vector.map { $0 / norm }
            lambda.append(Complex(-0.5, omega))
            // V*x for real x: Σ conj(v_k) x_k.
            var pv = Complex<Double>.zero, bv = Complex<Double>.zero
            for k in 0..<n {
                pv = pv + vector[k].conjugate * p[k]
                bv = bv + vector[k].conjugate * b[k]
            }
            if let clip = bImaginaryClip { bv = Complex(bv.real, min(max(bv.imaginary, -clip), clip)) }
            pTilde.append(pv)
            bTilde.append(bv)
        }
        return SSMInitialization(lambda: lambda, p: pTilde, b: bTilde)
    }
}

/// Diagonal (S4D) initialisations, docs/s4-reference.md §1.4: Re λ = −½, B = 1.
public enum S4DInitialization {
    /// S4D-Lin: λ_n = −½ − iπn.
    public static func linear(stateSize n: Int) -> SSMInitialization {
        let lambda = (0..<(n / 2)).map { Complex(-0.5, -Double.pi * Double($0)) }
        return SSMInitialization(lambda: lambda, p: [], b: Array(repeating: .one, count: n / 2))
    }

    /// S4D-Inv: λ_n = −½ − i(N/π)(N/(2n+1) − 1).
    public static func inverse(stateSize n: Int) -> SSMInitialization {
        let nn = Double(n)
        let lambda = (0..<(n / 2)).map { Complex(-0.5, -(nn / .pi) * (nn / Double(2 * $0 + 1) - 1)) }
        return SSMInitialization(lambda: lambda, p: [], b: Array(repeating: .one, count: n / 2))
    }
}
