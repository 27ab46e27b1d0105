import Numerics
import Testing

@testable import S4Core

/// The NPLR form of HiPPO-LegS (docs/s4-reference.md §1.2), computed by the Jacobi eigensolver.
@Suite struct HiPPOTests {
    /// The diagonalisation is a change of basis, so scalar transfer functions are invariant:
    /// uᵀ(sI − A)⁻¹v in the LegS basis equals ũᴴ(sI − Λ + P̃P̃ᴴ)⁻¹ṽ on the conjugate-expanded
    /// half form, for u, v ∈ {P, B}. Agreement to 1e-9 shows Λ, P̃ and B̃ (unclipped) are right.
    @Test(arguments: [8, 16, 64])
    func nplrIsASimilarityOfLegS(stateSize n: Int) {
        let legS = HiPPO.legS(stateSize: n)
        let nplr = HiPPO.nplrLegS(stateSize: n)
        #expect(nplr.lambda.count == n / 2)
        #expect(nplr.lambda.allSatisfy { abs($0.real + 0.5) < 1e-9 && $0.imaginary < 0 })
        let channel = SSMChannel(lambda: nplr.lambda, p: [nplr.p], b: nplr.b, c: nplr.b, d: 0, stepSize: 1, method: .bilinear)
        let dense = DenseSystem(channel)
        let pFull = nplr.p + nplr.p.map(\.conjugate)
        for s in [Complex(0.3, 1.0), Complex(2.0, -5.0), Complex(0.0, 40.0)] {
            // Original basis, real A.
            var m = [Complex<Double>](repeating: .zero, count: n * n)
            for i in 0..<n { for k in 0..<n { m[i * n + k] = (i == k ? s : .zero) - Complex(legS.a[i * n + k]) } }
            let resolventB = DenseSystem.solve(m, legS.b.map { Complex($0) }, n: n, columns: 1)
            let pb = zip(legS.p, resolventB).reduce(Complex<Double>.zero) { $0 + Complex($1.0) * $1.1 }
            let bb = zip(legS.b, resolventB).reduce(Complex<Double>.zero) { $0 + Complex($1.0) * $1.1 }
            // Diagonal-plus-low-rank basis.
            var md = dense.a.map { -$0 }
            for i in 0..<n { md[i * n + i] = md[i * n + i] + s }
            let resolventBTilde = DenseSystem.solve(md, dense.b, n: n, columns: 1)
            let pbTilde = zip(pFull, resolventBTilde).reduce(Complex<Double>.zero) { $0 + $1.0.conjugate * $1.1 }
            let bbTilde = zip(dense.b, resolventBTilde).reduce(Complex<Double>.zero) { $0 + $1.0.conjugate * $1.1 }
            #expect((pb - pbTilde).length < 1e-9 * max(1, pb.length))
            #expect((bb - bbTilde).length < 1e-9 * max(1, bb.length))
        }
    }

    @Test func s4dInitialisations() {
        let lin = S4DInitialization.linear(stateSize: 8)
        #expect(lin.lambda.map(\.imaginary) == [0, -Double.pi, -2 * Double.pi, -3 * Double.pi])
        let inv = S4DInitialization.inverse(stateSize: 8)
        #expect(abs(inv.lambda[0].imaginary + (8 / Double.pi) * 7) < 1e-12)
        #expect((lin.lambda + inv.lambda).allSatisfy { $0.real == -0.5 })
    }
}
