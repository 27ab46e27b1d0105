import Numerics

/// Scratch buffers for running the network over up to `capacity` samples at once, [T × H] rows.
/// Sized once; nothing grows with the stream.
final class NetworkBuffers {
    let capacity: Int
    let width: Int
    /// The residual stream x.
    let hidden: UnsafeMutablePointer<Float>
    /// Norm(x), and the final features.
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

/// The position-wise parts of the network, identical in both modes (docs/model-format.md).
/// `ssm(layer, Norm(x), y)` is the only mode-specific stage: convolution or recurrence.
extension S4Model {
    /// Runs `rows` samples through encoder, blocks and final norm; the final features are left in
    /// `buffers.normed`. `observe(i, x)` sees the residual stream after block i (tests use it).
    func forward(_ samples: UnsafePointer<Float>, rows: Int, buffers: NetworkBuffers,
                 ssm: (Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 observe: ((Int, UnsafePointer<Float>) -> Void)? = nil) {
        let h = width
        let mean = Float(metadata.inputMean), inverseStd = Float(1 / metadata.inputStd)
        let x = buffers.hidden
        encoderWeight.withUnsafeBufferPointer { w in
            encoderBias.withUnsafeBufferPointer { b in
                for t in 0..<rows {
                    let u = (samples[t] - mean) * inverseStd
                    let row = x + t &* h
                    for j in 0..<h { row[j] = Relaxed.multiplyAdd(w[j], u, b[j]) }
                }
            }
        }
        observe?(-1, x)
        for (i, block) in blocks.enumerated() {
            block.norm.apply(x, to: buffers.normed, rows: rows)
            ssm(i, buffers.normed, buffers.activated)
            let count = rows &* h
            GELU.apply(buffers.activated, count: count)
            block.output.apply(buffers.activated, to: buffers.wide, rows: rows)
            if block.isGated {
                for t in 0..<rows {
                    Self.addGatedLinearUnit(buffers.wide + t &* (2 &* h), to: x + t &* h, width: h)
                }
            } else {
                for j in 0..<count { x[j] += buffers.wide[j] }
            }
            observe?(i, x)
        }
        finalNorm.apply(x, to: buffers.normed, rows: rows)
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
