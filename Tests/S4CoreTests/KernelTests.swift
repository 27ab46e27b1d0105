import Foundation
import Numerics
import S4RandomModel
import Testing

@testable import S4Core

/// Convolution kernels against explicit powers of a dense Ā (docs/s4-reference.md §3).
@Suite struct KernelTests {
    /// Cauchy + Woodbury (with C̃ from the true C) equals Cᵀ Ā^k B̄ from a dense bilinear Ā, in
    /// Double. Both are exact maths; 1e-10 relative leaves room for the FFT and the dense solve.
    @Test(arguments: [(8, 1, 0.01, 64), (8, 1, 0.1, 63), (16, 2, 0.003, 100), (8, 1, 0.5, 32)])
    func dplrKernelEqualsExplicitPowers(stateSize: Int, rank: Int, step: Double, length: Int) {
        let channel = randomChannel(stateSize: stateSize, rank: rank, step: step, seed: UInt64(stateSize * 31 + length))
        let kernel = DPLRKernel.compute(channel, stepSize: step, length: length)
        let dense = DenseSystem(channel)
        let (aBar, bBar) = dense.bilinear(step: step)
        let reference = dense.kernelByPowers(aBar: aBar, bBar: bBar, length: length)
        #expect(relativeError(kernel, reference) < 1e-10)
    }

    /// The kernel of an unconverted C̃ = C would differ: the length correction matters when Ā^L is
    /// not negligible (small Δ, short L). This guards against a test that passes whatever C̃ is.
    @Test func lengthCorrectionIsNotANoOp() {
        let channel = randomChannel(stateSize: 8, step: 0.001, seed: 5)
        let discrete = channel.discretized(stepSize: 0.001)
        let corrected = discrete.lengthCorrectedC(length: 50)
        let difference = zip(corrected, channel.c).map { ($0 - $1).length }.max()!
        #expect(difference > 1e-3)
    }

    @Test(arguments: [DiscretizationMethod.zoh, .bilinear])
    func diagonalKernelEqualsRecurrence(method: DiscretizationMethod) {
        let channel = randomChannel(stateSize: 16, diagonal: true, method: method, step: 0.02, seed: 9)
        let kernel = DiagonalKernel.compute(channel, stepSize: 0.02, length: 200)
        // Impulse response of the Double recurrence, without D.
        let discrete = channel.discretized(stepSize: 0.02)
        var x = [Complex<Double>](repeating: .zero, count: channel.modeCount)
        var reference: [Double] = []
        for k in 0..<200 { reference.append(discrete.step(&x, input: k == 0 ? 1 : 0) - (k == 0 ? channel.d : 0)) }
        #expect(relativeError(kernel, reference) < 1e-12)
    }

    /// ZOH and bilinear give different kernels (so the method is really used).
    @Test func zohDiffersFromBilinear() {
        let zoh = randomChannel(stateSize: 8, diagonal: true, method: .zoh, step: 0.2, seed: 3)
        var bilinear = zoh
        bilinear.method = .bilinear
        let a = DiagonalKernel.compute(zoh, stepSize: 0.2, length: 50),
            b = DiagonalKernel.compute(bilinear, stepSize: 0.2, length: 50)
        #expect(relativeError(a, b) > 1e-3)
    }

    /// The Float FFT convolution (zero-padded, FFTW single precision) equals a direct causal
    /// convolution in Double to Float rounding: ≤ 1e-5 of the output scale for L = 4000.
    @Test func fftConvolutionEqualsDirectConvolution() {
        let length = 4000, channels = 3
        var rng = SeededGenerator(seed: 11)
        let kernels = (0..<channels).map { h in
            (0..<length).map { k in Foundation.exp(-Double(k) / Double(50 * (h + 1))) * rng.normal() }
        }
        let input = (0..<(length * channels)).map { _ in Float(rng.normal()) }
        let skip: [Float] = [0.5, -1, 2]
        let convolution = FFTConvolution(kernels: kernels, length: length)
        var output = [Float](repeating: 0, count: length * channels)
        input.withUnsafeBufferPointer { i in
            output.withUnsafeMutableBufferPointer { o in
                convolution.apply(i.baseAddress!, to: o.baseAddress!, rows: length, skip: skip)
            }
        }
        for h in 0..<channels {
            let u = (0..<length).map { Double(input[$0 * channels + h]) }
            var reference = [Double](repeating: 0, count: length)
            for t in 0..<length {
                var sum = Double(skip[h]) * u[t]
                for k in 0...t { sum += kernels[h][k] * u[t - k] }
                reference[t] = sum
            }
            let got = (0..<length).map { output[$0 * channels + h] }
            #expect(relativeError(got, reference) < 1e-5)
        }
    }
}
