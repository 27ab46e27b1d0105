import Numerics

/// One channel discretised at a step Δ, in Double: x_k = Ā x_{k−1} + B̄ u_k, y_k = 2·Re(C x_k) + D u_k.
///
/// For DPLR the transition is applied in O(N) through Woodbury (docs/s4-reference.md §4.1); an
/// eigendecomposition of Ā is never used (it is ill-conditioned for HiPPO).
public struct DiscreteChannel: Sendable {
    enum Transition: Sendable {
        /// Bilinear DPLR: Ā x = W(E ⊙ x − Σ_r P_r·2Re(P_rᴴ x)) with W the Woodbury inverse.
        case lowRank(DPLRBilinear)
        /// Diagonal: Ā = diag(a).
        case diagonal(a: [Complex<Double>])
    }

    let transition: Transition
    /// B̄, M modes.
    public let bBar: [Complex<Double>]
    public let c: [Complex<Double>]
    public let d: Double
    /// The step size Δ it was discretised at (`step(_:input:)` is one step of the recurrence).
    public let stepSize: Double

    init(_ channel: SSMChannel, stepSize delta: Double) {
        stepSize = delta
        c = channel.c
        d = channel.d
        if channel.isLowRank {
            precondition(channel.method == .bilinear, "DPLR kernels are bilinear")
            let woodbury = DPLRBilinear(lambda: channel.lambda, p: channel.p, stepSize: delta)
            transition = .lowRank(woodbury)
            bBar = woodbury.inverse(channel.b.map { 2 * $0 })
        } else {
            var a: [Complex<Double>] = []
            var bBar: [Complex<Double>] = []
            for (lambda, b) in zip(channel.lambda, channel.b) {
                let z = delta * lambda
                switch channel.method {
                case .bilinear:
                    let denominator = 1 - z / 2
                    a.append((1 + z / 2) / denominator)
                    bBar.append(delta * b / denominator)
                case .zoh:
                    let e = Complex.exp(z)
                    a.append(e)
                    bBar.append(b * (e - 1) / lambda)
                }
            }
            transition = .diagonal(a: a)
            self.bBar = bBar
        }
    }

    public var modeCount: Int { c.count }

    /// x ← Ā x (the state update without input).
    public func applyTransition(_ x: inout [Complex<Double>]) {
        switch transition {
        case .lowRank(let woodbury):
            x = woodbury.inverse(woodbury.forward(x))
        case .diagonal(let a):
            for m in x.indices { x[m] = a[m] * x[m] }
        }
    }

    /// One recurrent step: x ← Ā x + B̄ u, returns y = 2·Re(C x) + D u.
    public func step(_ x: inout [Complex<Double>], input u: Double) -> Double {
        applyTransition(&x)
        for m in x.indices { x[m] = x[m] + bBar[m] * u }
        return output(x) + d * u
    }

    /// 2·Re(Σ C_m x_m).
    public func output(_ x: [Complex<Double>]) -> Double {
        var sum = 0.0
        for m in x.indices { sum += c[m].real * x[m].real - c[m].imaginary * x[m].imaginary }
        return 2 * sum
    }

    /// Ā as a real 2M × 2M matrix (row-major) acting on v = [Re x; Im x], built by applying the
    /// transition to the basis vectors. The recurrence is real-linear, so this is exact.
    public func realTransitionMatrix() -> [Double] {
        let m = modeCount, n = 2 * m
        var matrix = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            var x = [Complex<Double>](repeating: .zero, count: m)
            x[j % m] = j < m ? Complex(1, 0) : Complex(0, 1)
            applyTransition(&x)
            for i in 0..<m {
                matrix[i * n + j] = x[i].real
                matrix[(m + i) * n + j] = x[i].imaginary
            }
        }
        return matrix
    }

    /// C̃ = (I − Ā^L)ᵀ C for the kernel of length L (docs/s4-reference.md §3.1): the C for which the
    /// generating function at the L-th roots of unity equals the truncated kernel of the true C.
    public func lengthCorrectedC(length: Int) -> [Complex<Double>] {
        let m = modeCount, n = 2 * m
        let w = c.map { 2 * $0.real } + c.map { -2 * $0.imaginary }
        let power = RealMatrix.power(realTransitionMatrix(), size: n, exponent: length)
        // w̃ = (I − Ā^L)ᵀ w
        var corrected = w
        for j in 0..<n {
            var sum = 0.0
            for i in 0..<n { sum += power[i * n + j] * w[i] }
            corrected[j] -= sum
        }
        return (0..<m).map { Complex(corrected[$0] / 2, -corrected[m + $0] / 2) }
    }
}
