import Foundation
import Testing

@testable import S4Core

/// The stages engine against float64 outputs of the PyTorch training code (s4train.fixtures) on
/// tiny committed two-stage models: an S4D bank (square, LayerNorm, GLU) and a DPLR bank
/// (abs, BatchNorm, linear output), at 16 kHz and at 11.025 kHz, where frames are 110.25 samples.
@Suite struct StageFixtureTests {
    static let cases: [(String, Int)] = [
        ("stages_diag", 16000), ("stages_diag", 11025), ("stages_dplr", 16000), ("stages_dplr", 11025),
    ]

    /// Convolution mode in Float against float64, at each boundary: stage 0's output, the pooled
    /// frames, the final features and the logits agree to 1e-4 of their scale (Float FFTs; the
    /// log of frame means adds no more than its input's relative error).
    @Test(arguments: cases)
    func convolutionMatchesPyTorch(name: String, rate: Int) throws {
        let model = try S4Model(safetensors: try FixtureTests.load(name))
        let reference = try SafeTensors(bytes: try FixtureTests.load("\(name).reference"))
        let input = try reference.values("input_\(rate)").map(Float.init)
        let trace = ConvolutionNetwork(model: model, sampleRate: Double(rate), length: input.count).trace(input)
        // residuals: stage 0's encoder, then its bank.
        #expect(relativeError(trace.residuals[1], try reference.values("rate_\(rate).stage0")) < 1e-4, "\(name) stage 0")
        #expect(relativeError(trace.frames, try reference.values("rate_\(rate).frames")) < 1e-4, "\(name) frames")
        #expect(relativeError(trace.finalFeatures, try reference.values("rate_\(rate).final_norm")) < 1e-4, "\(name) final norm")
        #expect(relativeError(trace.logits, try reference.values("rate_\(rate).logits")) < 1e-4, "\(name) logits")
    }

    /// Recurrent mode (Float, per sample, Δ rescaled, frames emitted as they complete) against
    /// PyTorch's float64 convolution: logits to 1e-4 of their scale.
    @Test(arguments: cases)
    func recurrenceMatchesPyTorch(name: String, rate: Int) throws {
        let model = try S4Model(safetensors: try FixtureTests.load(name))
        let reference = try SafeTensors(bytes: try FixtureTests.load("\(name).reference"))
        let input = try reference.values("input_\(rate)").map(Float.init)
        let network = RecurrentNetwork(model: model, sampleRate: Double(rate))
        let state = network.makeState(chunkCapacity: 1)
        network.process(input, state: state)
        #expect(relativeError(network.logits(state), try reference.values("rate_\(rate).logits")) < 1e-4)
    }

    /// A streaming head (`stages_frame`, an S4D bank and a frame stage with head.pooling "frame",
    /// a window of 3 frames): the logits of every frame by the recurrence, one state through the input, against PyTorch's
    /// float64 per-frame logits to 1e-4 of their scale, as for the clip heads; and convolution
    /// mode's final features at every frame likewise.
    @Test(arguments: [16000, 11025])
    func streamingHeadMatchesPyTorch(rate: Int) throws {
        let model = try S4Model(safetensors: try FixtureTests.load("stages_frame"))
        #expect(model.metadata.headPooling == .frame && model.metadata.headWindowFrames == 3)
        let reference = try SafeTensors(bytes: try FixtureTests.load("stages_frame.reference"))
        let input = try reference.values("input_\(rate)").map(Float.init)
        let network = RecurrentNetwork(model: model, sampleRate: Double(rate))
        let state = network.makeState(chunkCapacity: 160)
        var logits: [Float] = []
        input.withUnsafeBufferPointer { samples in network.stream(samples, state: state) { logits += $0 } }
        let expected = try reference.values("rate_\(rate).logits")
        try #require(logits.count == expected.count, "\(logits.count) logits, \(expected.count) expected")
        #expect(relativeError(logits, expected) < 1e-4)
        let trace = ConvolutionNetwork(model: model, sampleRate: Double(rate), length: input.count).trace(input)
        #expect(relativeError(trace.finalFeatures, try reference.values("rate_\(rate).final_norm")) < 1e-4)
    }
}
