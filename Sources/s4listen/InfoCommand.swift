import ArgumentParser
import S4Core
import S4Service

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Print a model's metadata as JSON.")

    @Argument(help: "Model file (default: the bundled model).")
    var modelPath: String?

    func run() throws {
        var options = ModelOptions()
        options.model = modelPath
        let (model, path) = try options.load()
        let m = model.metadata
        JSONLine.object([
            ("file", .string(path)),
            ("parameters", .integer(model.parameterCount)),
            ("kernel", .string(m.kernel.rawValue)),
            ("d_model", .integer(m.dModel)),
            ("n_layers", .integer(m.layerCount)),
            ("d_state", .integer(m.stateSize)),
            ("sample_rate", .integer(m.sampleRate)),
            ("labels", .array(m.labels.map { .string($0) })),
            ("untrained", .bool(m.isUntrained)),
            ("metadata", .raw(m.json)),
        ]).emit()
    }
}
