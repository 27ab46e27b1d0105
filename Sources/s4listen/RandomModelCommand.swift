import ArgumentParser
import Foundation
import S4Core

/// Writes an untrained model: for tests, benchmarks and the default until a trained one ships.
struct RandomModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "random-model",
        abstract: "Write an untrained (randomly initialised) model file, marked \"untrained\" in its metadata.")

    @Option(help: "LAYERSxWIDTHxSTATE, e.g. 4x64x32.")
    var size: String = "4x64x32"

    @Option(help: "dplr (HiPPO-LegS, bilinear) or diag (S4D-Lin, ZOH).")
    var kernel: String = "dplr"

    @Option(help: "Seed of the deterministic generator.")
    var seed: UInt64 = 1

    @Argument(help: "Output .safetensors file.")
    var output: String

    func run() throws {
        let model = S4Model.random(try Self.configuration(size: size, kernel: kernel, seed: seed))
        guard FileManager.default.createFile(atPath: output, contents: Data(model.safetensors())) else {
            throw CommandFailure("cannot write \(output)")
        }
    }

    static func configuration(size: String, kernel: String, seed: UInt64) throws -> RandomModelConfiguration {
        let fields = size.split(separator: "x", omittingEmptySubsequences: false)
        let parts = fields.compactMap { Int($0) }
        // The limits are those a model file may have (ModelMetadata), so the file can be loaded.
        guard fields.count == 3, parts.count == 3, parts.allSatisfy({ $0 > 0 && $0 <= 4096 }), parts[0] <= 256,
              parts[2] % 2 == 0 else {
            throw ValidationError("size must be LAYERSxWIDTHxSTATE (at most 256 layers, width and state at most 4096, state even), e.g. 6x128x64")
        }
        var configuration = RandomModelConfiguration()
        configuration.layerCount = parts[0]
        configuration.width = parts[1]
        configuration.stateSize = parts[2]
        configuration.seed = seed
        switch kernel {
        case "dplr": configuration.kernel = .dplr
        case "diag": configuration.kernel = .diag; configuration.discretization = .zoh
        default: throw ValidationError("kernel must be dplr or diag")
        }
        return configuration
    }
}
