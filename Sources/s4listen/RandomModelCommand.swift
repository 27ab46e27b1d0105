import ArgumentParser
import Foundation
import S4Core
import S4RandomModel

/// Writes an untrained model: for tests and benchmarks.
struct RandomModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "random-model",
        abstract: "Write an untrained (randomly initialised) model file, marked \"untrained\" in its metadata.")

    @Option(help: "Stage 0 at the input rate: LAYERSxWIDTHxSTATE, e.g. 4x64x32.")
    var size: String = "4x64x32"

    @OptionGroup var shape: RandomShapeOptions

    @Option(help: "Seed of the deterministic generator.")
    var seed: UInt64 = 1

    @Argument(help: "Output .safetensors file.")
    var output: String

    func run() throws {
        let model = S4Model.random(try shape.configuration(size: size, seed: seed))
        try ModelFile.write(model.safetensors(), to: output)
    }
}

/// The shape of a random model beyond stage 0's size, shared by `random-model` and `bench`.
struct RandomShapeOptions: ParsableArguments {
    @Option(help: "dplr (HiPPO-LegS, bilinear) or diag (S4D-Lin, ZOH).")
    var kernel: String = "dplr"

    @Flag(help: "Stage 0 is a bare S4 filter bank (one SSM layer; LAYERS must be 1).")
    var bank = false

    @Option(help: "Add 10 ms frame pooling and a diagonal S4 stage at the frame clock: LAYERSxWIDTHxSTATE, e.g. 6x128x64.")
    var frames: String?

    @Flag(help: "A streaming head (logits every frame, labels the commands and _nothing_); needs --frames.")
    var streamingHead = false

    static func parse(_ size: String, option: String) throws -> (layers: Int, width: Int, state: Int) {
        let fields = size.split(separator: "x", omittingEmptySubsequences: false)
        let parts = fields.compactMap { Int($0) }
        // The limits are those a model file may have (ModelMetadata), so the file can be loaded.
        guard fields.count == 3, parts.count == 3, parts.allSatisfy({ $0 > 0 && $0 <= 4096 }), parts[0] <= 256,
            parts[2] % 2 == 0
        else {
            throw ValidationError(
                "\(option) must be LAYERSxWIDTHxSTATE (at most 256 layers, width and state at most 4096, state even), e.g. 6x128x64"
            )
        }
        return (parts[0], parts[1], parts[2])
    }

    func configuration(size: String, seed: UInt64) throws -> RandomModelConfiguration {
        let stage0 = try Self.parse(size, option: "size")
        var configuration = RandomModelConfiguration()
        configuration.layerCount = stage0.layers
        configuration.width = stage0.width
        configuration.stateSize = stage0.state
        configuration.seed = seed
        switch kernel {
        case "dplr": configuration.kernel = .dplr
        case "diag": configuration.kernel = .diag; configuration.discretization = .zoh
        default: throw ValidationError("kernel must be dplr or diag")
        }
        if bank {
            guard stage0.layers == 1 else { throw ValidationError("a filter bank has one layer: use 1xWIDTHxSTATE with --bank") }
            configuration.isBank = true
        }
        if let frames {
            let stage1 = try Self.parse(frames, option: "--frames")
            var frameStage = FrameStageConfiguration()
            frameStage.layerCount = stage1.layers
            frameStage.width = stage1.width
            frameStage.stateSize = stage1.state
            configuration.frames = frameStage
        }
        if streamingHead {
            guard frames != nil else { throw ValidationError("--streaming-head needs --frames") }
            configuration.headPooling = .frame
            configuration.labels = Vocabulary.commands + ["_nothing_"]
        }
        return configuration
    }
}
