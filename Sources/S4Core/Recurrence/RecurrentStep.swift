/// The per-sample S4 recurrence in Float for one block of eight channels over `count` samples of
/// a [T × H] buffer (rows `stride` floats apart). The state is carried in place, so running a
/// signal in chunks of any size gives the same result, bit for bit, as running it sample by sample.
extension DiscreteLayer {
    func run(block: Int, state: UnsafeMutablePointer<Lanes>, scratch: UnsafeMutablePointer<Lanes>,
             input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, stride: Int, count: Int) {
        let lanes = min(Self.laneCount, width - block * Self.laneCount)
        constants.withUnsafeBufferPointer { buffer in
            let k = buffer.baseAddress! + block &* blockStride
            if isLowRank {
                Self.stepLowRank(k, modes: modes, rank: rank, skip: skip[block], state: state, scratch: scratch,
                                 input: input, output: output, stride: stride, count: count, lanes: lanes)
            } else {
                Self.stepDiagonal(k, modes: modes, skip: skip[block], state: state,
                                  input: input, output: output, stride: stride, count: count, lanes: lanes)
            }
        }
    }

    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>, lanes: Int) -> Lanes {
        if lanes == laneCount { return UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self) }
        var value = Lanes.zero
        for i in 0..<lanes { value[i] = pointer[i] }
        return value
    }

    @inline(__always)
    static func store(_ value: Lanes, to pointer: UnsafeMutablePointer<Float>, lanes: Int) {
        if lanes == laneCount {
            UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Lanes.self)
        } else {
            for i in 0..<lanes { pointer[i] = value[i] }
        }
    }

    /// x ← D ⊙ (s − Σ_r P_r·2Re(R̃_r s)) + B̄u with s = E ⊙ x − Σ_r P_r·2Re(P_rᴴ x): O(N·r) per
    /// sample (s4-reference.md §4.1). y = 2Re(C x) + D u.
    @inline(__always)
    static func stepLowRank(_ k: UnsafePointer<Lanes>, modes m: Int, rank: Int, skip: Lanes,
                            state: UnsafeMutablePointer<Lanes>, scratch: UnsafeMutablePointer<Lanes>,
                            input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                            stride: Int, count: Int, lanes: Int) {
        let eRe = k, eIm = k + m, dRe = k + 2 &* m, dIm = k + 3 &* m
        let bRe = k + 4 &* m, bIm = k + 5 &* m, cRe = k + 6 &* m, cIm = k + 7 &* m
        let xRe = state, xIm = state + m
        let sRe = scratch, sIm = scratch + m, w = scratch + 2 &* m
        for t in 0..<count {
            let u = load(input + t &* stride, lanes: lanes)
            // s = E ⊙ x − Σ_r P_r·2Re(P_rᴴ x)
            for j in 0..<m {
                sRe[j] = eRe[j] * xRe[j] - eIm[j] * xIm[j]
                sIm[j] = eRe[j] * xIm[j] + eIm[j] * xRe[j]
            }
            for r in 0..<rank {
                let pRe = k + (8 &+ 4 &* r) &* m, pIm = pRe + m
                var v = Lanes.zero
                for j in 0..<m { v += pRe[j] * xRe[j] + pIm[j] * xIm[j] }
                v *= 2
                for j in 0..<m {
                    sRe[j] -= pRe[j] * v
                    sIm[j] -= pIm[j] * v
                }
            }
            // w_r = 2Re(R̃_r s), all from the same s.
            for r in 0..<rank {
                let rRe = k + (10 &+ 4 &* r) &* m, rIm = rRe + m
                var acc = Lanes.zero
                for j in 0..<m { acc += rRe[j] * sRe[j] - rIm[j] * sIm[j] }
                w[r] = acc
            }
            for r in 1..<max(1, rank) {
                let pRe = k + (8 &+ 4 &* r) &* m, pIm = pRe + m
                let wr = w[r]
                for j in 0..<m {
                    sRe[j] -= pRe[j] * wr
                    sIm[j] -= pIm[j] * wr
                }
            }
            // x = D ⊙ (s − P_0 w_0) + B̄u (rank 0's correction fused in), y = 2Re(C x) + D u.
            let p0Re = k + 8 &* m, p0Im = p0Re + m, w0 = w[0]
            var y = skip * u
            for j in 0..<m {
                let re = sRe[j] - p0Re[j] * w0, im = sIm[j] - p0Im[j] * w0
                let xr = dRe[j] * re - dIm[j] * im + bRe[j] * u
                let xi = dRe[j] * im + dIm[j] * re + bIm[j] * u
                xRe[j] = xr
                xIm[j] = xi
                y += cRe[j] * xr - cIm[j] * xi
            }
            store(y, to: output + t &* stride, lanes: lanes)
        }
    }

    /// x ← Ā ⊙ x + B̄u, y = 2Re(C x) + D u.
    @inline(__always)
    static func stepDiagonal(_ k: UnsafePointer<Lanes>, modes m: Int, skip: Lanes, state: UnsafeMutablePointer<Lanes>,
                             input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                             stride: Int, count: Int, lanes: Int) {
        let aRe = k, aIm = k + m, bRe = k + 2 &* m, bIm = k + 3 &* m, cRe = k + 4 &* m, cIm = k + 5 &* m
        let xRe = state, xIm = state + m
        for t in 0..<count {
            let u = load(input + t &* stride, lanes: lanes)
            var y = skip * u
            for j in 0..<m {
                let re = aRe[j] * xRe[j] - aIm[j] * xIm[j] + bRe[j] * u
                let im = aRe[j] * xIm[j] + aIm[j] * xRe[j] + bIm[j] * u
                xRe[j] = re
                xIm[j] = im
                y += cRe[j] * re - cIm[j] * im
            }
            store(y, to: output + t &* stride, lanes: lanes)
        }
    }
}
