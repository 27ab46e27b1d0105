import Numerics
import S4RandomModel

@testable import S4Core

/// Dense complex reference maths for the tests, independent of the engine's O(N) paths: the
/// conjugate-expanded N × N system and the bilinear Ā = (2/Δ − A)⁻¹(2/Δ + A) by Gaussian elimination.
struct DenseSystem {
    let n: Int
    /// Row-major N × N.
    var a: [Complex<Double>]
    var b: [Complex<Double>]
    var c: [Complex<Double>]

    /// A_full = diag(Λ, Λ̄) − Σ_r p_r p_rᴴ, p_r = [P_r; P̄_r]; B = [B; B̄]; C = [C; C̄].
    init(_ channel: SSMChannel) {
        let m = channel.modeCount
        n = 2 * m
        var a = [Complex<Double>](repeating: .zero, count: n * n)
        for i in 0..<m {
            a[i * n + i] = channel.lambda[i]
            a[(m + i) * n + (m + i)] = channel.lambda[i].conjugate
        }
        for p in channel.p {
            let full = p + p.map(\.conjugate)
            for i in 0..<n { for k in 0..<n { a[i * n + k] = a[i * n + k] - full[i] * full[k].conjugate } }
        }
        self.a = a
        b = channel.b + channel.b.map(\.conjugate)
        c = channel.c + channel.c.map(\.conjugate)
    }

    /// Solves M X = R for X (M: n × n, R: n × cols), row-major, partial pivoting.
    static func solve(_ m: [Complex<Double>], _ r: [Complex<Double>], n: Int, columns: Int) -> [Complex<Double>] {
        var m = m, x = r
        for col in 0..<n {
            let pivot = (col..<n).max { m[$0 * n + col].length < m[$1 * n + col].length }!
            for k in 0..<n { m.swapAt(col * n + k, pivot * n + k) }
            for k in 0..<columns { x.swapAt(col * columns + k, pivot * columns + k) }
            for row in (col + 1)..<n {
                let f = m[row * n + col] / m[col * n + col]
                for k in col..<n { m[row * n + k] = m[row * n + k] - f * m[col * n + k] }
                for k in 0..<columns { x[row * columns + k] = x[row * columns + k] - f * x[col * columns + k] }
            }
        }
        for row in stride(from: n - 1, through: 0, by: -1) {
            for k in 0..<columns {
                var s = x[row * columns + k]
                for j in (row + 1)..<n { s = s - m[row * n + j] * x[j * columns + k] }
                x[row * columns + k] = s / m[row * n + row]
            }
        }
        return x
    }

    /// (Ā, B̄) of the bilinear discretisation, dense.
    func bilinear(step delta: Double) -> (aBar: [Complex<Double>], bBar: [Complex<Double>]) {
        var minus = a.map { -$0 }, plus = a
        for i in 0..<n {
            minus[i * n + i] = minus[i * n + i] + Complex(2 / delta)
            plus[i * n + i] = plus[i * n + i] + Complex(2 / delta)
        }
        let aBar = Self.solve(minus, plus, n: n, columns: n)
        let bBar = Self.solve(minus, b.map { $0 * Complex(2) }, n: n, columns: 1)
        return (aBar, bBar)
    }

    func multiply(_ m: [Complex<Double>], _ v: [Complex<Double>]) -> [Complex<Double>] {
        (0..<n).map { i in (0..<n).reduce(Complex<Double>.zero) { $0 + m[i * n + $1] * v[$1] } }
    }

    /// K̄_k = Cᵀ Ā^k B̄ by explicit powers (the naive Krylov kernel).
    func kernelByPowers(aBar: [Complex<Double>], bBar: [Complex<Double>], length: Int) -> [Double] {
        var v = bBar
        var kernel: [Double] = []
        for _ in 0..<length {
            kernel.append((0..<n).reduce(Complex<Double>.zero) { $0 + c[$1] * v[$1] }.real)
            v = multiply(aBar, v)
        }
        return kernel
    }
}

/// max |x − y| / max |y|: the error relative to the scale of the reference.
func relativeError(_ x: [Double], _ reference: [Double]) -> Double {
    precondition(x.count == reference.count, "lengths differ: \(x.count) vs \(reference.count)")
    let scale = reference.map(abs).max() ?? 0
    let error = zip(x, reference).map { abs($0 - $1) }.max() ?? 0
    return scale > 0 ? error / scale : error
}

func relativeError(_ x: [Float], _ reference: [Double]) -> Double {
    relativeError(x.map(Double.init), reference)
}

/// A random DPLR (or diagonal) channel around the HiPPO-LegS / S4D-Lin initialisation.
func randomChannel(
    stateSize n: Int, rank: Int = 1, diagonal: Bool = false, method: DiscretizationMethod = .bilinear,
    step: Double, seed: UInt64
) -> SSMChannel {
    var rng = SeededGenerator(seed: seed)
    let initialization = diagonal ? S4DInitialization.inverse(stateSize: n) : HiPPO.nplrLegS(stateSize: n)
    func perturb(_ z: Complex<Double>) -> Complex<Double> { z + Complex(0.1 * rng.normal(), 0.1 * rng.normal()) }
    let lambda = initialization.lambda.map { Complex(-abs(perturb($0).real), perturb($0).imaginary) }
    let p =
        diagonal
        ? []
        : (0..<rank).map { r in
            r == 0 ? initialization.p.map(perturb) : initialization.p.map { _ in Complex(0.3 * rng.normal(), 0.3 * rng.normal()) }
        }
    let b = initialization.b.map(perturb)
    let c = (0..<(n / 2)).map { _ in Complex(rng.normal(), rng.normal()) }
    return SSMChannel(lambda: lambda, p: p, b: b, c: c, d: rng.normal(), stepSize: step, method: method)
}
