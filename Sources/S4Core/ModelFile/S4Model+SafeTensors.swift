import Foundation
import Numerics

extension S4Model {
    /// Reads and validates a model file of format 1 or 2 (docs/model-format.md). Refuses, with a
    /// message naming the problem: truncated or malformed containers, missing or inconsistent
    /// metadata, missing tensors, wrong shapes, widths that do not chain, NaN or infinity, odd N,
    /// unstable Λ (Re λ ≥ 0), and a model whose probe run gives non-finite logits.
    public init(safetensors bytes: [UInt8]) throws(ModelFileError) {
        let file = try SafeTensors(bytes: bytes)
        guard let json = file.metadata["s4"] else { throw .missingMetadata("the \"s4\" entry of __metadata__") }
        let metadata = try ModelMetadata(json: json)
        let reader = TensorReader(file: file)
        var stages: [S4Stage] = []
        var inputWidth = 1
        for (s, description) in metadata.stages.enumerated() {
            let prefix = metadata.format == 1 ? "" : "stages.\(s)."
            stages.append(try reader.stage(description, prefix: prefix, inputWidth: inputWidth, index: s))
            inputWidth = description.width
        }
        let pooling = try metadata.pooling.map { description throws(ModelFileError) in
            FramePooling(
                description,
                norm: try reader.norm(
                    "pooling.norm", .batch, epsilon: description.normEpsilon,
                    width: metadata.stages[0].width))
        }
        let k = metadata.labels.count
        self.init(
            metadata: metadata, stages: stages, pooling: pooling,
            finalNorm: try reader.norm("final_norm", metadata.headNorm, epsilon: metadata.headNormEpsilon, width: inputWidth),
            decoder: try reader.linear("decoder", inputs: inputWidth, outputs: k))
        try probe()
    }

    /// A model can hold only finite numbers and still compute nothing but NaN (an `input_std`
    /// of 1e-300, weights of 1e38), or overflow only at another rate (Δ rescaled: a larger Δ
    /// gives a larger state). A full-scale chirp through the recurrent engine must give finite
    /// logits at the training rate and at each of `probeRates`.
    func probe() throws(ModelFileError) {
        let trainingRate = Double(metadata.sampleRate)
        for rate in [trainingRate] + Self.probeRates.filter({ $0 != trainingRate }) {
            let count = min(windowLength(forSampleRate: rate), Int(rate / 4))
            let network = RecurrentNetwork(model: self, sampleRate: rate)
            let state = network.makeState()
            network.process(Self.chirp(count: count, rate: rate), state: state)
            let logits = network.logits(state)
            guard logits.allSatisfy(\.isFinite) else {
                throw .nonFiniteOutput(
                    "a test signal at \(Int(rate)) Hz gives logits \(logits.prefix(4).map { "\($0)" }.joined(separator: ", "))…")
            }
        }
    }

    /// The rates audio is commonly recorded at, from telephone to studio.
    static let probeRates: [Double] = [8000, 11025, 16000, 22050, 44100, 48000]

    /// Amplitude 1 (full scale), its frequency rising linearly from 0 to 0.45 of `rate`, so that
    /// every filter meets its resonance at the loudest input a source delivers.
    static func chirp(count: Int, rate: Double) -> [Float] {
        let top = 0.45 * rate, seconds = Double(count) / rate
        return (0..<count).map { n in
            let t = Double(n) / rate
            return Float(sin(Double.pi * top / seconds * t * t))
        }
    }

    /// The model as a format-2 safetensors file. BatchNorm is written in its folded form
    /// (γ′ = scale, β′ = shift, running mean 0, running variance 1 − ε), which reads back as the same map.
    public func safetensors() -> [UInt8] {
        var writer = SafeTensorsWriter()
        writer.metadata["s4"] = metadata.formatTwo.json
        func addNorm(_ prefix: String, _ norm: Normalization, epsilon: Double) {
            let h = norm.scale.count
            writer.add("\(prefix).weight", shape: [h], values: norm.scale)
            writer.add("\(prefix).bias", shape: [h], values: norm.shift)
            if case .batch = norm.kind {
                writer.add("\(prefix).running_mean", shape: [h], values: Array(repeating: 0, count: h))
                writer.add("\(prefix).running_var", shape: [h], values: Array(repeating: Float(1 - epsilon), count: h))
            }
        }
        func addLinear(_ prefix: String, _ map: LinearMap) {
            writer.add("\(prefix).weight", shape: [map.outputCount, map.inputCount], values: map.weight)
            writer.add("\(prefix).bias", shape: [map.outputCount], values: map.bias)
        }
        func addComplex(_ name: String, shape: [Int], _ values: [Complex<Double>]) {
            writer.add("\(name)_re", shape: shape, values: values.map { Float($0.real) })
            writer.add("\(name)_im", shape: shape, values: values.map { Float($0.imaginary) })
        }
        for (s, stage) in stages.enumerated() {
            let description = metadata.stages[s], h = stage.width, m = description.stateSize / 2
            addLinear("stages.\(s).encoder", stage.encoder)
            for (i, layer) in stage.layers.enumerated() {
                let prefix = "stages.\(s).layers.\(i)"
                if case .block(let block) = layer {
                    addNorm("\(prefix).norm", block.norm, epsilon: description.normEpsilon)
                    addLinear("\(prefix).out", block.output)
                }
                let channels = layer.channels
                addComplex("\(prefix).ssm.lambda", shape: [h, m], channels.flatMap(\.lambda))
                if description.kernel == .dplr {
                    let rank = description.rank
                    addComplex("\(prefix).ssm.p", shape: [rank, h, m], (0..<rank).flatMap { r in channels.flatMap { $0.p[r] } })
                }
                addComplex("\(prefix).ssm.b", shape: [h, m], channels.flatMap(\.b))
                addComplex("\(prefix).ssm.c", shape: [h, m], channels.flatMap(\.c))
                writer.add("\(prefix).ssm.log_dt", shape: [h], values: channels.map { Float(Foundation.log($0.stepSize)) })
                writer.add("\(prefix).ssm.d", shape: [h], values: channels.map { Float($0.d) })
            }
        }
        if let pooling, let description = metadata.pooling {
            addNorm("pooling.norm", pooling.norm, epsilon: description.normEpsilon)
        }
        addNorm("final_norm", finalNorm, epsilon: metadata.headNormEpsilon)
        addLinear("decoder", decoder)
        return writer.serialized()
    }
}

/// Typed reads of a model's tensors, each checked for shape and finiteness by `SafeTensors`.
private struct TensorReader {
    let file: SafeTensors

    func floats(_ name: String, _ shape: [Int]) throws(ModelFileError) -> [Float] {
        try file.values(name, shape: shape).map(Float.init)
    }

    func linear(_ prefix: String, inputs: Int, outputs: Int) throws(ModelFileError) -> LinearMap {
        LinearMap(
            weight: try floats("\(prefix).weight", [outputs, inputs]), bias: try floats("\(prefix).bias", [outputs]),
            inputCount: inputs, outputCount: outputs)
    }

    func norm(_ prefix: String, _ kind: ModelMetadata.Norm, epsilon: Double, width h: Int) throws(ModelFileError) -> Normalization
    {
        switch kind {
        case .layer:
            return .layer(
                weight: try floats("\(prefix).weight", [h]), bias: try floats("\(prefix).bias", [h]), epsilon: Float(epsilon))
        case .batch:
            let variance = try file.values("\(prefix).running_var", shape: [h])
            if let bad = variance.firstIndex(where: { $0 < 0 }) {
                throw .invalidMetadata("\(prefix).running_var is negative at element \(bad)")
            }
            return .batch(
                weight: try file.values("\(prefix).weight", shape: [h]), bias: try file.values("\(prefix).bias", shape: [h]),
                runningMean: try file.values("\(prefix).running_mean", shape: [h]), runningVariance: variance,
                epsilon: epsilon)
        }
    }

    func complex(_ prefix: String, _ shape: [Int]) throws(ModelFileError) -> [Complex<Double>] {
        let re = try file.values("\(prefix)_re", shape: shape), im = try file.values("\(prefix)_im", shape: shape)
        return zip(re, im).map { Complex($0, $1) }
    }

    func stage(_ description: ModelMetadata.Stage, prefix: String, inputWidth: Int, index s: Int) throws(ModelFileError)
        -> S4Stage
    {
        let h = description.width
        if let weight = file.tensors["\(prefix)encoder.weight"], weight.shape.count == 2, weight.shape[1] != inputWidth {
            let source = s == 0 ? "the input is 1 wide" : "stage \(s - 1) is \(inputWidth) wide"
            throw .invalidMetadata(
                "stage widths do not chain: \(prefix)encoder.weight takes \(weight.shape[1]) inputs but \(source)")
        }
        let encoder = try linear("\(prefix)encoder", inputs: inputWidth, outputs: h)
        var layers: [S4Layer] = []
        for i in 0..<description.layerCount {
            let layer = "\(prefix)layers.\(i)"
            let channels = try self.channels("\(layer).ssm", description)
            if description.isBank {
                layers.append(.bank(channels))
            } else {
                let outWidth = description.output == .glu ? 2 * h : h
                layers.append(
                    .block(
                        S4Block(
                            norm: try norm("\(layer).norm", description.norm, epsilon: description.normEpsilon, width: h),
                            channels: channels, output: try linear("\(layer).out", inputs: h, outputs: outWidth))))
            }
        }
        return S4Stage(clock: description.clock, encoder: encoder, layers: layers)
    }

    func channels(_ prefix: String, _ description: ModelMetadata.Stage) throws(ModelFileError) -> [SSMChannel] {
        let h = description.width, m = description.stateSize / 2, rank = description.rank
        let lambda = try complex("\(prefix).lambda", [h, m])
        if let bad = lambda.firstIndex(where: { $0.real >= 0 }) {
            throw .unstable("\(prefix).lambda_re", index: bad, value: lambda[bad].real)
        }
        let p = description.kernel == .dplr ? try complex("\(prefix).p", [rank, h, m]) : []
        let b = try complex("\(prefix).b", [h, m])
        let c = try complex("\(prefix).c", [h, m])
        let logStep = try file.values("\(prefix).log_dt", shape: [h])
        let d = try file.values("\(prefix).d", shape: [h])
        return try (0..<h).map { ch throws(ModelFileError) in
            let step = Foundation.exp(logStep[ch])
            guard step > 0, step.isFinite else {
                throw .invalidMetadata("\(prefix).log_dt gives Δ = \(step) at element \(ch): Δ must be positive and finite")
            }
            return SSMChannel(
                lambda: Array(lambda[(ch * m)..<((ch + 1) * m)]),
                p: (0..<rank).map { r in Array(p[((r * h + ch) * m)..<((r * h + ch + 1) * m)]) },
                b: Array(b[(ch * m)..<((ch + 1) * m)]), c: Array(c[(ch * m)..<((ch + 1) * m)]),
                d: d[ch], stepSize: step, method: description.discretization)
        }
    }
}
