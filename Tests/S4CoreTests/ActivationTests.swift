import Foundation
import Testing

@testable import S4Core

/// The vectorised GELU (exact erf form, through a fitted rational erf) and the GLU gate's
/// logistic function against libm in Double.
@Suite struct ActivationTests {
    static let inputs: [Float] = stride(from: -12.0, through: 12.0, by: 0.0037).map { Float($0) }

    static func evaluate(_ f: (SIMD8<Float>) -> SIMD8<Float>, _ xs: [Float]) -> [Float] {
        stride(from: 0, to: xs.count, by: 8).flatMap { start -> [Float] in
            var lanes = SIMD8<Float>.zero
            let count = min(8, xs.count - start)
            for k in 0..<count { lanes[k] = xs[start + k] }
            let result = f(lanes)
            return (0..<count).map { result[$0] }
        }
    }

    /// Within 1e-6 of x·Φ(x) for |x| ≤ 1, and 1e-6·|x| beyond (Float rounding of x itself).
    @Test func geluMatchesTheErfForm() {
        let got = Self.evaluate(GELU.value, Self.inputs)
        for (x, y) in zip(Self.inputs, got) {
            let exact = 0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))
            #expect(abs(Double(y) - exact) <= 1e-6 * max(1, abs(Double(x))), "x = \(x)")
        }
    }

    @Test func geluInPlaceHandlesTails() {
        var values: [Float] = [-3, -1, -0.5, 0, 0.5, 1, 3, 7, 0.25, -0.25, 2]  // 11: one vector and a tail
        let expected = values.map { x in Float(0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))) }
        values.withUnsafeMutableBufferPointer { GELU.apply($0.baseAddress!, count: $0.count) }
        for (y, e) in zip(values, expected) { #expect(abs(y - e) < 1e-6) }
    }

    /// e^x to 3e-7 relative over the whole clamped range; σ to 2e-7 absolute.
    @Test func vectorExpAndSigmoid() {
        let xs: [Float] = stride(from: -80.0, through: 80.0, by: 0.013).map { Float($0) }
        for (x, y) in zip(xs, Self.evaluate(Sigmoid.exp, xs)) {
            let exact = Foundation.exp(Double(x))
            #expect(abs(Double(y) - exact) <= 3e-7 * exact, "x = \(x)")
        }
        for (x, y) in zip(Self.inputs, Self.evaluate(Sigmoid.value, Self.inputs)) {
            #expect(abs(Double(y) - 1 / (1 + Foundation.exp(-Double(x)))) <= 2e-7, "x = \(x)")
        }
    }
}
