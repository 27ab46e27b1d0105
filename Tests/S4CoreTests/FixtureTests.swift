import Foundation
import Testing

@testable import S4Core

/// The Swift engine against float64 outputs of the PyTorch training code (models/train/make_fixtures.py)
/// on tiny committed models: one DPLR (LayerNorm, GLU) and one S4D (ZOH, BatchNorm, linear output),
/// at their training rate and at half of it.
@Suite struct FixtureTests {
    static func load(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
        return [UInt8](try Data(contentsOf: url))
    }

    static let cases: [(String, Int)] = [("tiny_dplr", 16000), ("tiny_dplr", 8000), ("tiny_diag", 16000), ("tiny_diag", 8000)]

    /// Kernels are computed in Double on both sides: they agree to 1e-9 of their scale (the
    /// weights are the same Float values; only summation order differs).
    @Test(arguments: cases)
    func kernelsMatchPyTorch(name: String, rate: Int) throws {
        let model = try S4Model(safetensors: try Self.load(name))
        let reference = try SafeTensors(bytes: try Self.load("\(name).reference"))
        let input = try reference.values("input_\(rate)")
        let scale = model.stepScale(forSampleRate: Double(rate))
        for (i, layer) in model.stages[0].layers.enumerated() {
            let expected = try reference.values("rate_\(rate).kernel.\(i)")
            for (h, channel) in layer.channels.enumerated() {
                let kernel = channel.convolutionKernel(stepSize: channel.stepSize * scale, length: input.count)
                let row = Array(expected[(h * input.count)..<((h + 1) * input.count)])
                #expect(relativeError(kernel, row) < 1e-9, "\(name) layer \(i) channel \(h)")
            }
        }
    }

    /// Convolution mode, per layer, in Float against float64: 1e-4 of each stage's scale (Float
    /// FFT over 4000 samples and two layers; measured 3e-8 to 1e-7 on logits, 3e-7 on features).
    @Test(arguments: cases)
    func convolutionMatchesPyTorch(name: String, rate: Int) throws {
        let model = try S4Model(safetensors: try Self.load(name))
        let reference = try SafeTensors(bytes: try Self.load("\(name).reference"))
        let input = try reference.values("input_\(rate)").map(Float.init)
        let trace = ConvolutionNetwork(model: model, sampleRate: Double(rate), length: input.count).trace(input)
        let stages = ["encoder"] + model.stages[0].layers.indices.map { "layers.\($0)" }
        for (stage, residual) in zip(stages, trace.residuals) {
            #expect(relativeError(residual, try reference.values("rate_\(rate).\(stage)")) < 1e-4, "\(name) \(stage)")
        }
        #expect(relativeError(trace.finalFeatures, try reference.values("rate_\(rate).final_norm")) < 1e-4)
        #expect(relativeError(trace.logits, try reference.values("rate_\(rate).logits")) < 1e-4)
    }

    /// Recurrent mode (Float, per sample, Δ rescaled) against PyTorch's float64 convolution: the
    /// logits agree to 1e-4 of their scale (measured 2e-7 to 3e-6).
    @Test(arguments: cases)
    func recurrenceMatchesPyTorch(name: String, rate: Int) throws {
        let model = try S4Model(safetensors: try Self.load(name))
        let reference = try SafeTensors(bytes: try Self.load("\(name).reference"))
        let input = try reference.values("input_\(rate)").map(Float.init)
        let network = RecurrentNetwork(model: model, sampleRate: Double(rate))
        let state = network.makeState(chunkCapacity: 1)
        network.process(input, state: state)
        #expect(relativeError(network.logits(state), try reference.values("rate_\(rate).logits")) < 1e-4)
    }
}
