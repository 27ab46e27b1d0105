import Foundation
import Numerics
import S4RandomModel
import Testing

@testable import S4Core

/// The recurrent view against the dense step and against the convolution view (docs/s4-reference.md §4, §7.2).
@Suite struct RecurrenceTests {
    /// The O(N) Woodbury step equals x ← Ā x + B̄ u with a dense bilinear Ā (Double, 1e-12).
    @Test(arguments: [(8, 1, 0.01), (16, 2, 0.1), (8, 1, 1.0)])
    func woodburyStepEqualsDenseStep(stateSize: Int, rank: Int, step: Double) {
        let channel = randomChannel(stateSize: stateSize, rank: rank, step: step, seed: 21)
        let discrete = channel.discretized(stepSize: step)
        let dense = DenseSystem(channel)
        let (aBar, bBar) = dense.bilinear(step: step)
        var rng = SeededGenerator(seed: 2)
        var x = [Complex<Double>](repeating: .zero, count: channel.modeCount)
        var full = [Complex<Double>](repeating: .zero, count: dense.n)
        var worst = 0.0, scale = 0.0
        for _ in 0..<200 {
            let u = rng.normal()
            let y = discrete.step(&x, input: u)
            full = zip(dense.multiply(aBar, full), bBar).map { $0 + $1 * Complex(u) }
            let reference = (0..<dense.n).reduce(Complex<Double>.zero) { $0 + dense.c[$1] * full[$1] }.real + channel.d * u
            worst = max(worst, abs(y - reference))
            scale = max(scale, abs(reference))
        }
        #expect(worst / scale < 1e-12)
    }

    /// The Float hot loop over a 16000-sample window against the Double recurrence, for 11
    /// channels (one full block of eight lanes and a partial one), rank 1 and 2, and Δ from the
    /// smallest a 48 kHz stream gives (3e-4) to the largest initialisation (0.1). Tolerance 3e-5
    /// of max |y|: the bound docs/s4-reference.md §7.2 measured for complex64 vs complex128.
    @Test(arguments: [(false, 1, 0.004), (false, 2, 0.004), (false, 1, 3e-4), (false, 2, 0.1), (true, 0, 0.004), (true, 0, 3e-4)])
    func floatStepTracksDoubleStep(diagonal: Bool, rank: Int, step: Double) {
        let width = 11, length = 16000
        let channels = (0..<width).map { h in
            randomChannel(
                stateSize: 64, rank: max(rank, 1), diagonal: diagonal, method: diagonal ? .zoh : .bilinear,
                step: step * (1 + 0.1 * Double(h)), seed: UInt64(4 + h))
        }
        let layer = DiscreteLayer(channels: channels, stepScale: 1)
        var rng = SeededGenerator(seed: 8)
        let input = (0..<(length * width)).map { _ in Float(rng.normal()) }
        let output = layer.run(input, width: width, chunks: [length]).output
        for (h, channel) in channels.enumerated() {
            let discrete = channel.discretized(stepSize: channel.stepSize)
            var x = [Complex<Double>](repeating: .zero, count: channel.modeCount)
            let reference = (0..<length).map { discrete.step(&x, input: Double(input[$0 * width + h])) }
            let got = (0..<length).map { output[$0 * width + h] }
            #expect(relativeError(got, reference) < 3e-5, "channel \(h)")
        }
    }

    /// The diagonal step gives the same bits in chunks of any size as one sample at a time: its
    /// modes are summed in one order however the chunk is cut (four at a time held over a chunk,
    /// one pass for a single step). 11 channels (a partial block of lanes) and 7 modes (a group
    /// of four and three left over); the state must end equal too.
    @Test func diagonalStepIsTheSameInAnyChunking() {
        let width = 11
        let (layer, input) = Self.diagonalLayer(width: width, length: 1000, seed: 30)
        let single = layer.run(input, width: width, chunks: [1])
        let chunked = layer.run(input, width: width, chunks: [128, 3, 1, 200, 7])
        #expect(Self.bitsDiffering(chunked, single) == nil)
    }

    /// On a processor with AVX-512 two full blocks at a time run in 512-bit vectors (`runPair`,
    /// C): the same bits as each block through the Swift step, in any chunking. 16 channels, 7 modes.
    @Test(.enabled(if: wideStepAvailable)) func wideStepEqualsTheBlockStep() {
        let width = 16
        let (layer, input) = Self.diagonalLayer(width: width, length: 700, seed: 50)
        let reference = layer.run(input, width: width, chunks: [1, 128, 3])
        var output = [Float](repeating: 0, count: input.count)
        var state = [DiscreteLayer.Lanes](repeating: .zero, count: layer.stateStride * layer.blockCount)
        input.withUnsafeBufferPointer { i in
            output.withUnsafeMutableBufferPointer { o in
                state.withUnsafeMutableBufferPointer { s in
                    var start = 0
                    for count in [1, 128, 3, 1, 128, 3, 436] {
                        layer.runPair(
                            block: 0, state: s.baseAddress!, input: i.baseAddress! + start * width,
                            output: o.baseAddress! + start * width, stride: width, count: count)
                        start += count
                    }
                }
            }
        }
        #expect(Self.bitsDiffering((output, state), reference) == nil)
    }

    /// A diagonal layer of `width` channels of 7 modes (a group of four and three more) and
    /// `length` rows of noise for it.
    static func diagonalLayer(width: Int, length: Int, seed: UInt64) -> (DiscreteLayer, [Float]) {
        let channels = (0..<width).map { h in
            randomChannel(stateSize: 14, diagonal: true, method: .zoh, step: 0.01 * (1 + Double(h)), seed: seed + UInt64(h))
        }
        var rng = SeededGenerator(seed: seed)
        return (DiscreteLayer(channels: channels, stepScale: 1), (0..<(length * width)).map { _ in Float(rng.normal()) })
    }

    /// How many outputs and state lanes of two runs differ, or nil where none does.
    static func bitsDiffering(
        _ run: (output: [Float], state: [DiscreteLayer.Lanes]), _ reference: (output: [Float], state: [DiscreteLayer.Lanes])
    ) -> String? {
        let outputs = zip(run.output, reference.output).filter { $0 != $1 }.count
        let states = zip(run.state, reference.state).filter { $0 != $1 }.count
        return outputs == 0 && states == 0 ? nil : "\(outputs) outputs, \(states) state lanes differ"
    }

    /// Recurrent mode equals convolution mode over a whole 16000-sample window for a random
    /// 3-layer model. Both run in Float; they differ in summation order (FFT vs recurrence) through
    /// three layers of LayerNorm, GELU and GLU, so they agree to Float rounding amplified by depth (measured
    /// 2e-6 for DPLR, 9e-6 for S4D); the test allows 5e-5.
    @Test(arguments: [ModelMetadata.Kernel.dplr, .diag])
    func recurrentEqualsConvolution(kernel: ModelMetadata.Kernel) {
        var configuration = RandomModelConfiguration()
        configuration.width = 16
        configuration.layerCount = 3
        configuration.stateSize = 16
        configuration.kernel = kernel
        configuration.discretization = kernel == .dplr ? .bilinear : .zoh
        let model = S4Model.random(configuration)
        var rng = SeededGenerator(seed: 12)
        let window: [Float] = (0..<16000).map { i in
            let tone: Double = 0.3 * sin(Double(i) * 0.05)
            return Float(tone + 0.05 * rng.normal())
        }
        let recurrent = RecurrentNetwork(model: model, sampleRate: 16000)
        let state = recurrent.makeState(chunkCapacity: 160)
        recurrent.process(window, state: state)
        let convolution = ConvolutionNetwork(model: model, sampleRate: 16000)
        let reference = convolution.logits(window).map(Double.init)
        #expect(relativeError(recurrent.logits(state), reference) < 5e-5)
    }

    /// Chunked recurrence equals per-sample recurrence: the SSM states are carried bit for bit;
    /// only BLAS may sum the position-wise products in another order, so logits agree to 1e-5
    /// (measured: 0 for 160, 2e-8 for 7, 4e-8 for 64).
    @Test(arguments: [7, 64, 160])
    func chunkingDoesNotChangeTheOutput(chunk: Int) {
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.layerCount = 2
        configuration.stateSize = 16
        let model = S4Model.random(configuration)
        let network = RecurrentNetwork(model: model, sampleRate: 16000)
        var rng = SeededGenerator(seed: 3)
        let signal = (0..<4000).map { _ in Float(0.2 * rng.normal()) }
        let perSample = network.makeState(chunkCapacity: 1)
        network.process(signal, state: perSample)
        let chunked = network.makeState(chunkCapacity: chunk)
        network.processInUnevenPieces(signal, state: chunked)
        #expect(chunked.sampleCount == perSample.sampleCount)
        let reference = network.logits(perSample).map(Double.init)
        #expect(relativeError(network.logits(chunked), reference) < 1e-5)
    }

    /// reset() returns to the zero state: a window after a reset gives the same logits as in a new state.
    @Test func resetStartsAFreshWindow() {
        let model = S4Model.random(RandomModelConfiguration())
        let network = RecurrentNetwork(model: model, sampleRate: 16000)
        let state = network.makeState()
        var rng = SeededGenerator(seed: 1)
        network.process((0..<3000).map { _ in Float(rng.normal()) }, state: state)
        let window = (0..<2000).map { _ in Float(rng.normal()) }
        state.reset()
        network.process(window, state: state)
        let fresh = network.makeState()
        network.process(window, state: fresh)
        #expect(network.logits(state) == network.logits(fresh))
    }
}

extension RecurrentNetwork {
    /// Feeds `signal` in pieces of 1, 4, 13, … samples, so chunk boundaries fall anywhere.
    func processInUnevenPieces(_ signal: [Float], state: RecurrentState) {
        var offset = 0, piece = 1
        while offset < signal.count {
            let n = min(piece, signal.count - offset)
            process(Array(signal[offset..<(offset + n)]), state: state)
            offset += n
            piece = piece * 3 % 997 + 1
        }
    }
}

extension DiscreteLayer {
    /// Every block of the layer over `input` ([T × width] rows) from a zero state, in chunks of
    /// the sizes in `chunks` (cycled): the output rows and the final state.
    func run(_ input: [Float], width: Int, chunks: [Int]) -> (output: [Float], state: [Lanes]) {
        let length = input.count / width
        var output = [Float](repeating: 0, count: input.count)
        var state = [Lanes](repeating: .zero, count: stateStride * blockCount)
        var scratch = [Lanes](repeating: .zero, count: scratchCount)
        input.withUnsafeBufferPointer { i in
            output.withUnsafeMutableBufferPointer { o in
                state.withUnsafeMutableBufferPointer { s in
                    scratch.withUnsafeMutableBufferPointer { w in
                        var start = 0, k = 0
                        while start < length {
                            let count = min(chunks[k % chunks.count], length - start)
                            for block in 0..<blockCount {
                                let first = start * width + block * Self.laneCount
                                run(
                                    block: block, state: s.baseAddress! + block * stateStride, scratch: w.baseAddress!,
                                    input: i.baseAddress! + first, output: o.baseAddress! + first, stride: width,
                                    count: count)
                            }
                            start += count
                            k += 1
                        }
                    }
                }
            }
        }
        return (output, state)
    }
}
