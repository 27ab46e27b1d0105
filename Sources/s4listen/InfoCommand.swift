import ArgumentParser
import S4Core
import S4Detection
import S4Service

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Print a model's metadata as JSON.")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "Model file, as --model (one or the other).")
    var modelPath: String?

    func validate() throws {
        if modelPath != nil && modelOptions.model != nil {
            throw ValidationError("give the model either as an argument or with --model, not both")
        }
    }

    func run() throws {
        var options = modelOptions
        if let modelPath { options.model = modelPath }
        let (model, path) = try options.load()
        let m = model.metadata
        var fields: [(String, JSONLine)] = [
            ("file", .string(path)),
            ("format", .integer(m.format)),
            ("parameters", .integer(model.parameterCount)),
            ("sample_rate", .integer(m.sampleRate)),
            (
                "stages",
                .array(
                    m.stages.map { stage in
                        .object([
                            ("clock", .string(stage.clock.rawValue)), ("bank", .bool(stage.isBank)),
                            ("kernel", .string(stage.kernel.rawValue)), ("d_model", .integer(stage.width)),
                            ("n_layers", .integer(stage.layerCount)), ("d_state", .integer(stage.stateSize)),
                        ])
                    })
            ),
        ]
        if let pooling = m.pooling { fields.append(("frame_seconds", .number(pooling.frameSeconds))) }
        fields.append(("head", .string(m.headPooling.rawValue)))
        if m.headPooling == .frame { fields.append(("head_window_frames", .integer(m.headWindowFrames))) }
        fields += [
            ("labels", .array(m.labels.map { .string($0) })),
            ("untrained", .bool(m.isUntrained)),
            // What `listen`, `classify` and `serve` use without --threshold.
            ("threshold", .number(Double(DetectorConfiguration().threshold(for: model)))),
            ("metadata", .raw(m.json)),
        ]
        try JSONLine.object(fields).emit()
    }
}
