import Foundation
import Testing

@testable import S4Core

/// Format-2 files: round trips, refusals that name the problem, and format-1 files read as one stage.
@Suite struct StageModelFileTests {
    static let model = StageTests.twoStageModel(kernel: .diag)
    static let bytes = model.safetensors()

    static func variant(
        replacing name: String? = nil, shape: [Int] = [], values: [Float]? = nil,
        metadata edit: ((inout [String: Any]) -> Void)? = nil
    ) throws -> [UInt8] {
        try ModelFileTests.variant(of: bytes, replacing: name, shape: shape, values: values, metadata: edit)
    }

    static func logits(_ model: S4Model, rate: Double = 16000) -> [Float] {
        let network = RecurrentNetwork(model: model, sampleRate: rate)
        let state = network.makeState()
        network.process(StageTests.signal(count: Int(rate / 2), rate: rate, seed: 2), state: state)
        return network.logits(state)
    }

    /// BatchNorm is written folded (variance 1 − ε), so the pooling norm reads back within a
    /// rounding of its scale: 1e-6.
    @Test func roundTripKeepsTheModel() throws {
        let loaded = try S4Model(safetensors: Self.bytes)
        #expect(loaded.metadata.format == 2)
        #expect(loaded.metadata.stages == Self.model.metadata.stages)
        #expect(loaded.metadata.pooling == Self.model.metadata.pooling)
        #expect(relativeError(Self.logits(loaded, rate: 11025), Self.logits(Self.model, rate: 11025).map(Double.init)) < 1e-6)
    }

    @Test func frameLengthMustBeFiniteAndPositive() throws {
        for value in [0.0, -0.01, 2, 1e300] {
            let message = ModelFileTests.refusal(
                try Self.variant { object in
                    var pooling = object["pooling"] as! [String: Any]
                    pooling["frame_seconds"] = value
                    object["pooling"] = pooling
                })
            #expect(
                message?.contains("pooling.frame_seconds must be between 0.001 and 1 s") == true,
                "\(value): \(message ?? "accepted")")
        }
        let missing = ModelFileTests.refusal(try Self.variant { $0.removeValue(forKey: "pooling") })
        #expect(missing == "model metadata lacks pooling")
    }

    /// The optional detection threshold: read back, absent as nil, refused outside 0–1.
    @Test func detectionThresholdIsReadAndChecked() throws {
        #expect(try S4Model(safetensors: Self.bytes).metadata.detectionThreshold == nil)
        let given = try S4Model(safetensors: try Self.variant { $0["detection_threshold"] = 0.9 })
        #expect(given.metadata.detectionThreshold == 0.9)
        #expect(try S4Model(safetensors: given.safetensors()).metadata.detectionThreshold == 0.9)
        for value in [-0.1, 1.5] {
            let message = ModelFileTests.refusal(try Self.variant { $0["detection_threshold"] = value })
            #expect(message == "model metadata is invalid: detection_threshold must be between 0 and 1, got \(value)")
        }
        let text = ModelFileTests.refusal(try Self.variant { $0["detection_threshold"] = "high" })
        #expect(text == "model metadata is invalid: detection_threshold has the wrong type")
    }

    /// A threshold given in code is held to the same range: out of it, no file is made that
    /// could not be read back (a precondition, so the process stops).
    @Test func givenThresholdOutsideZeroToOneStops() async {
        await #expect(processExitsWith: .failure) {
            let m = StageModelFileTests.model.metadata  // the type by name: an exit test captures nothing
            _ = ModelMetadata(
                labels: m.labels, sampleRate: m.sampleRate, inputMean: m.inputMean, inputStd: m.inputStd,
                clipSeconds: m.clipSeconds, stages: m.stages, pooling: m.pooling, extra: ["detection_threshold": 1.5])
        }
        let m = StageModelFileTests.model.metadata
        let given = ModelMetadata(
            labels: m.labels, sampleRate: m.sampleRate, inputMean: m.inputMean, inputStd: m.inputStd,
            clipSeconds: m.clipSeconds, stages: m.stages, pooling: m.pooling, extra: ["detection_threshold": 0.5])
        #expect(given.detectionThreshold == 0.5)
    }

    @Test func widthsMustChain() throws {
        let message = ModelFileTests.refusal(
            try Self.variant(
                replacing: "stages.1.encoder.weight", shape: [8, 5],
                values: Array(repeating: 0.1, count: 40)))
        #expect(
            message
                == "model metadata is invalid: stage widths do not chain: stages.1.encoder.weight takes 5 inputs but stage 0 is 8 wide"
        )
    }

    @Test func missingStageTensorIsNamed() throws {
        let message = ModelFileTests.refusal(try Self.variant(replacing: "stages.1.layers.1.ssm.c_re"))
        #expect(message == "model file lacks tensor stages.1.layers.1.ssm.c_re")
        let pooling = ModelFileTests.refusal(try Self.variant(replacing: "pooling.norm.running_var"))
        #expect(pooling == "model file lacks tensor pooling.norm.running_var")
    }

    @Test func stageClocksAreChecked() throws {
        let frameFirst = ModelFileTests.refusal(
            try Self.variant(metadata: ModelFileTests.editStage(0) { $0["clock"] = "frames" }))
        #expect(
            frameFirst?.contains("stages[0].clock is \"frames\" but stage 0 must run at the input rate") == true,
            "\(frameFirst ?? "accepted")")
        let inputLater = ModelFileTests.refusal(try Self.variant(metadata: ModelFileTests.editStage(1) { $0["clock"] = "input" }))
        #expect(
            inputLater?.contains("stages[1].clock is \"input\" but stage 1 must run at the frame clock") == true,
            "\(inputLater ?? "accepted")")
    }

    @Test func aBankHasOneLayer() throws {
        let message = ModelFileTests.refusal(try Self.variant(metadata: ModelFileTests.editStage(0) { $0["n_layers"] = 2 }))
        #expect(message?.contains("stages[0].n_layers must be 1 for a filter bank") == true, "\(message ?? "accepted")")
    }

    /// Finite weights that compute only NaN are refused by the probe run.
    @Test func aModelThatComputesNaNIsRefused() throws {
        let tiny = ModelFileTests.refusal(try Self.variant { $0["input_std"] = 1e-300 })
        #expect(tiny?.hasPrefix("model computes NaN or infinity") == true, "\(tiny ?? "accepted")")
        let huge = ModelFileTests.refusal(
            try Self.variant(
                replacing: "stages.1.encoder.weight", shape: [8, 8],
                values: Array(repeating: 1e38, count: 64)))
        #expect(huge?.hasPrefix("model computes NaN or infinity") == true, "\(huge ?? "accepted")")
    }

    /// Δ is rescaled with the rate, so a model finite at its training rate can overflow at another
    /// (the model-file fuzzer found one at 11.025 kHz). Stage 0's C̃ scaled to just past the
    /// point where the loader refuses: the refusal names another rate than the training rate,
    /// so a probe at the training rate alone would have let this model through.
    @Test func aModelThatOverflowsOnlyAtAnotherRateIsRefused() throws {
        let name = "stages.0.layers.0.ssm.c_re"
        let file = try SafeTensors(bytes: Self.bytes)
        let shape = try #require(file.tensors[name]).shape
        let values = try file.values(name)
        func refusal(_ exponent: Double) throws -> String? {
            let scale = pow(10, exponent)
            return ModelFileTests.refusal(
                try Self.variant(replacing: name, shape: shape, values: values.map { Float($0 * scale) }))
        }
        // Bisect the exponent between accepted (10) and refused (40) down to 1e-4 (a factor 1.0002).
        var (accepted, refused) = (10.0, 40.0)
        #expect(try refusal(accepted) == nil)
        while refused - accepted > 1e-4 {
            let middle = (accepted + refused) / 2
            if try refusal(middle) == nil { accepted = middle } else { refused = middle }
        }
        let message = try #require(try refusal(refused))
        #expect(message.hasPrefix("model computes NaN or infinity: a test signal at "), "\(message)")
        #expect(!message.contains("at \(Self.model.metadata.sampleRate) Hz"), "\(message)")
    }

    /// A format-1 file (the committed tiny S4D fixture, written by the format-1 exporter) is one
    /// stage at the input clock; written back out it becomes a format-2 file with the same
    /// outputs, bit for bit.
    @Test func formatOneIsOneStage() throws {
        let original = try S4Model(safetensors: try FixtureTests.load("tiny_diag"))
        #expect(original.metadata.format == 1)
        #expect(original.stages.count == 1 && original.pooling == nil && original.stages[0].clock == .input)
        let rewritten = try S4Model(safetensors: original.safetensors())
        #expect(rewritten.metadata.format == 2)
        #expect(Self.logits(rewritten) == Self.logits(original))
        #expect(rewritten.parameterCount == original.parameterCount)
    }
}
