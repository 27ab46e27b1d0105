import Numerics

/// S4's one mode-specific operation, SSM(u) for the H channels of a layer over `rows` steps of a
/// [rows × H] buffer: a recurrence carrying state (`RecurrentSSM`) or an FFT convolution over a
/// window (`ConvolutionSSM`). Everything else in a stage is position-wise and shared.
protocol SSMOperator {
    func apply(layer: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int)
}

/// Scratch buffers for running one stage over up to `capacity` steps at once, [T × H] rows.
/// Sized once; nothing grows with the stream.
final class StageBuffers {
    let capacity: Int
    let width: Int
    /// The residual stream x: the stage's output.
    let hidden: UnsafeMutablePointer<Float>
    /// Norm(x), and the head's final features.
    let normed: UnsafeMutablePointer<Float>
    /// SSM output, then GELU of it.
    let activated: UnsafeMutablePointer<Float>
    /// Output map result (2H wide for GLU).
    let wide: UnsafeMutablePointer<Float>

    init(capacity: Int, width: Int) {
        self.capacity = capacity
        self.width = width
        hidden = .allocate(capacity: capacity * width)
        normed = .allocate(capacity: capacity * width)
        activated = .allocate(capacity: capacity * width)
        wide = .allocate(capacity: capacity * 2 * width)
    }

    deinit {
        hidden.deallocate(); normed.deallocate(); activated.deallocate(); wide.deallocate()
    }
}

/// The one block-stack code path of both modes (docs/model-format.md).
extension S4Stage {
    /// Runs `rows` steps of `input` ([rows × inputWidth]) through the encoder and the layers; the
    /// stage's output is left in `buffers.hidden`. `observe(i, x)` sees x after the encoder
    /// (i = −1) and after layer i (tests use it).
    func forward<SSM: SSMOperator>(
        _ input: UnsafePointer<Float>, rows: Int, buffers: StageBuffers, ssm: SSM,
        observe: ((Int, UnsafePointer<Float>) -> Void)? = nil
    ) {
        let h = width, count = rows &* h
        let x = buffers.hidden
        encoder.apply(input, to: x, rows: rows)
        observe?(-1, x)
        for (i, layer) in layers.enumerated() {
            switch layer {
            case .bank:
                ssm.apply(layer: i, input: x, output: buffers.activated, rows: rows)
                x.update(from: buffers.activated, count: count)
            case .block(let block):
                block.norm.apply(x, to: buffers.normed, rows: rows)
                ssm.apply(layer: i, input: buffers.normed, output: buffers.activated, rows: rows)
                GELU.apply(buffers.activated, count: count)
                block.output.apply(buffers.activated, to: buffers.wide, rows: rows)
                if block.isGated {
                    for t in 0..<rows {
                        Self.addGatedLinearUnit(buffers.wide + t &* (2 &* h), to: x + t &* h, width: h)
                    }
                } else {
                    for j in 0..<count { x[j] += buffers.wide[j] }
                }
            }
            observe?(i, x)
        }
    }

    /// x += value ⊙ σ(gate) for one row, where `out` holds value (H) then gate (H).
    @inline(__always)
    static func addGatedLinearUnit(_ out: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, width h: Int) {
        var j = 0
        while j &+ 8 <= h {
            let value = UnsafeRawPointer(out + j).loadUnaligned(as: Sigmoid.Lanes.self)
            let gate = UnsafeRawPointer(out + (h &+ j)).loadUnaligned(as: Sigmoid.Lanes.self)
            let row = UnsafeMutableRawPointer(x + j)
            row.storeBytes(of: row.loadUnaligned(as: Sigmoid.Lanes.self) + value * Sigmoid.value(gate), as: Sigmoid.Lanes.self)
            j &+= 8
        }
        while j < h {
            x[j] += out[j] / (1 + Float.exp(-out[h &+ j]))
            j &+= 1
        }
    }
}

extension S4Model {
    /// (x − mean)/std for `count` samples: stage 0's input.
    func standardize(_ samples: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, count: Int) {
        let mean = Float(metadata.inputMean), inverseStd = Float(1 / metadata.inputStd)
        for t in 0..<count { output[t] = (samples[t] - mean) * inverseStd }
    }

    /// Decoder(mean of the final features).
    func decode(pooledMean: [Float]) -> [Float] {
        var logits = [Float](repeating: 0, count: decoder.outputCount)
        pooledMean.withUnsafeBufferPointer { input in
            logits.withUnsafeMutableBufferPointer { output in
                decoder.apply(input.baseAddress!, to: output.baseAddress!, rows: 1)
            }
        }
        return logits
    }
}
