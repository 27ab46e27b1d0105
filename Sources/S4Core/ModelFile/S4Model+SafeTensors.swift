import Numerics
import Foundation

extension S4Model {
    /// Reads and validates a model file (docs/model-format.md). Refuses, with a message naming
    /// the problem: truncated or malformed containers, missing or inconsistent metadata, missing
    /// tensors, wrong shapes, NaN or infinity, odd N and unstable Λ (Re λ ≥ 0).
    public init(safetensors bytes: [UInt8]) throws(ModelFileError) {
        let file = try SafeTensors(bytes: bytes)
        guard let json = file.metadata["s4"] else { throw .missingMetadata("the \"s4\" entry of __metadata__") }
        let metadata = try ModelMetadata(json: json)
        let h = metadata.dModel, m = metadata.stateSize / 2, k = metadata.labels.count

        func floats(_ name: String, _ shape: [Int]) throws(ModelFileError) -> [Float] {
            try file.values(name, shape: shape).map(Float.init)
        }
        func norm(_ prefix: String) throws(ModelFileError) -> Normalization {
            switch metadata.norm {
            case .layer:
                return .layer(weight: try floats("\(prefix).weight", [h]), bias: try floats("\(prefix).bias", [h]),
                              epsilon: Float(metadata.normEpsilon))
            case .batch:
                let variance = try file.values("\(prefix).running_var", shape: [h])
                if let bad = variance.firstIndex(where: { $0 < 0 }) {
                    throw .invalidMetadata("\(prefix).running_var is negative at element \(bad)")
                }
                return .batch(weight: try file.values("\(prefix).weight", shape: [h]),
                              bias: try file.values("\(prefix).bias", shape: [h]),
                              runningMean: try file.values("\(prefix).running_mean", shape: [h]),
                              runningVariance: variance, epsilon: metadata.normEpsilon)
            }
        }
        func complex(_ prefix: String, _ shape: [Int]) throws(ModelFileError) -> [Complex<Double>] {
            let re = try file.values("\(prefix)_re", shape: shape), im = try file.values("\(prefix)_im", shape: shape)
            return zip(re, im).map { Complex($0, $1) }
        }

        var blocks: [S4Block] = []
        for i in 0..<metadata.layerCount {
            let prefix = "layers.\(i)"
            let lambda = try complex("\(prefix).ssm.lambda", [h, m])
            if let bad = lambda.firstIndex(where: { $0.real >= 0 }) {
                throw .unstable("\(prefix).ssm.lambda_re", index: bad, value: lambda[bad].real)
            }
            let rank = metadata.rank
            let p = metadata.kernel == .dplr ? try complex("\(prefix).ssm.p", [rank, h, m]) : []
            let b = try complex("\(prefix).ssm.b", [h, m])
            let c = try complex("\(prefix).ssm.c", [h, m])
            let logStep = try file.values("\(prefix).ssm.log_dt", shape: [h])
            let d = try file.values("\(prefix).ssm.d", shape: [h])
            let channels = (0..<h).map { ch in
                SSMChannel(lambda: Array(lambda[(ch * m)..<((ch + 1) * m)]),
                           p: (0..<rank).map { r in Array(p[((r * h + ch) * m)..<((r * h + ch + 1) * m)]) },
                           b: Array(b[(ch * m)..<((ch + 1) * m)]),
                           c: Array(c[(ch * m)..<((ch + 1) * m)]),
                           d: d[ch], step: Foundation.exp(logStep[ch]), method: metadata.discretization)
            }
            let outWidth = metadata.output == .glu ? 2 * h : h
            let output = LinearMap(weight: try floats("\(prefix).out.weight", [outWidth, h]),
                                   bias: try floats("\(prefix).out.bias", [outWidth]), inputCount: h, outputCount: outWidth)
            blocks.append(S4Block(norm: try norm("\(prefix).norm"), channels: channels, output: output))
        }
        self.init(metadata: metadata,
                  encoderWeight: try floats("encoder.weight", [h, 1]),
                  encoderBias: try floats("encoder.bias", [h]),
                  blocks: blocks,
                  finalNorm: try norm("final_norm"),
                  decoder: LinearMap(weight: try floats("decoder.weight", [k, h]), bias: try floats("decoder.bias", [k]),
                                     inputCount: h, outputCount: k))
    }

    /// The model as a safetensors file. BatchNorm is written in its folded form (γ′ = scale,
    /// β′ = shift, running mean 0, running variance 1 − ε), which reads back as the same map.
    public func safetensors() -> [UInt8] {
        var writer = SafeTensorsWriter()
        writer.metadata["s4"] = metadata.json
        let h = width, m = metadata.stateSize / 2
        func addNorm(_ prefix: String, _ norm: Normalization) {
            writer.add("\(prefix).weight", shape: [h], values: norm.scale)
            writer.add("\(prefix).bias", shape: [h], values: norm.shift)
            if case .batch = norm.kind {
                writer.add("\(prefix).running_mean", shape: [h], values: Array(repeating: 0, count: h))
                writer.add("\(prefix).running_var", shape: [h],
                           values: Array(repeating: Float(1 - metadata.normEpsilon), count: h))
            }
        }
        func addComplex(_ name: String, shape: [Int], _ values: [Complex<Double>]) {
            writer.add("\(name)_re", shape: shape, values: values.map { Float($0.real) })
            writer.add("\(name)_im", shape: shape, values: values.map { Float($0.imaginary) })
        }
        writer.add("encoder.weight", shape: [h, 1], values: encoderWeight)
        writer.add("encoder.bias", shape: [h], values: encoderBias)
        for (i, block) in blocks.enumerated() {
            let prefix = "layers.\(i)"
            addNorm("\(prefix).norm", block.norm)
            let channels = block.channels
            addComplex("\(prefix).ssm.lambda", shape: [h, m], channels.flatMap(\.lambda))
            if metadata.kernel == .dplr {
                let rank = metadata.rank
                addComplex("\(prefix).ssm.p", shape: [rank, h, m], (0..<rank).flatMap { r in channels.flatMap { $0.p[r] } })
            }
            addComplex("\(prefix).ssm.b", shape: [h, m], channels.flatMap(\.b))
            addComplex("\(prefix).ssm.c", shape: [h, m], channels.flatMap(\.c))
            writer.add("\(prefix).ssm.log_dt", shape: [h], values: channels.map { Float(Foundation.log($0.step)) })
            writer.add("\(prefix).ssm.d", shape: [h], values: channels.map { Float($0.d) })
            writer.add("\(prefix).out.weight", shape: [block.output.outputCount, h], values: block.output.weight)
            writer.add("\(prefix).out.bias", shape: [block.output.outputCount], values: block.output.bias)
        }
        addNorm("final_norm", finalNorm)
        writer.add("decoder.weight", shape: [decoder.outputCount, h], values: decoder.weight)
        writer.add("decoder.bias", shape: [decoder.outputCount], values: decoder.bias)
        return writer.serialized()
    }
}
