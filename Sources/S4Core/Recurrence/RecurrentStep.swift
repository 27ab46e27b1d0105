import Numerics

/// The per-sample S4 recurrence in Float, for one channel over `count` samples read and written
/// with a stride (the channel's column of a [T × H] buffer). The state is carried in place, so
/// running a signal in chunks of any size gives the same result as running it sample by sample.
extension DiscreteLayer {
    func run(channel: Int, state: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
             input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, stride: Int, count: Int) {
        constants.withUnsafeBufferPointer { buffer in
            let k = buffer.baseAddress! + channel &* channelStride
            if isLowRank {
                Self.stepLowRank(k, modes: modes, rank: rank, skip: skip[channel], state: state, scratch: scratch,
                                 input: input, output: output, stride: stride, count: count)
            } else {
                Self.stepDiagonal(k, modes: modes, skip: skip[channel], state: state,
                                  input: input, output: output, stride: stride, count: count)
            }
        }
    }

    /// x ← D ⊙ (s − Σ_r P_r·2Re(R̃_r s)) + B̄u with s = E ⊙ x − Σ_r P_r·2Re(P_rᴴ x): O(N·r) per
    /// sample (s4-reference.md §4.1). y = 2Re(C x) + D u.
    @inline(__always)
    static func stepLowRank(_ k: UnsafePointer<Float>, modes m: Int, rank: Int, skip: Float,
                            state: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                            input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, stride: Int, count: Int) {
        let eRe = k, eIm = k + m, dRe = k + 2 &* m, dIm = k + 3 &* m
        let bRe = k + 4 &* m, bIm = k + 5 &* m, cRe = k + 6 &* m, cIm = k + 7 &* m
        let xRe = state, xIm = state + m
        let sRe = scratch, sIm = scratch + m, w = scratch + 2 &* m
        for t in 0..<count {
            let u = input[t &* stride]
            for j in 0..<m {
                sRe[j] = eRe[j] * xRe[j] - eIm[j] * xIm[j]
                sIm[j] = eRe[j] * xIm[j] + eIm[j] * xRe[j]
            }
            for r in 0..<rank {
                let pRe = k + (8 &+ 4 &* r) &* m, pIm = pRe + m
                var v: Float = 0
                for j in 0..<m { v = Relaxed.multiplyAdd(pRe[j], xRe[j], Relaxed.multiplyAdd(pIm[j], xIm[j], v)) }
                v *= 2
                for j in 0..<m {
                    sRe[j] -= pRe[j] * v
                    sIm[j] -= pIm[j] * v
                }
            }
            for r in 0..<rank {
                let rRe = k + (10 &+ 4 &* r) &* m, rIm = rRe + m
                var acc: Float = 0
                for j in 0..<m { acc = Relaxed.multiplyAdd(rRe[j], sRe[j], Relaxed.multiplyAdd(-rIm[j], sIm[j], acc)) }
                w[r] = acc
            }
            for r in 0..<rank {
                let pRe = k + (8 &+ 4 &* r) &* m, pIm = pRe + m
                let wr = w[r]
                for j in 0..<m {
                    sRe[j] -= pRe[j] * wr
                    sIm[j] -= pIm[j] * wr
                }
            }
            var y: Float = 0
            for j in 0..<m {
                let re = dRe[j] * sRe[j] - dIm[j] * sIm[j] + bRe[j] * u
                let im = dRe[j] * sIm[j] + dIm[j] * sRe[j] + bIm[j] * u
                xRe[j] = re
                xIm[j] = im
                y = Relaxed.multiplyAdd(cRe[j], re, Relaxed.multiplyAdd(-cIm[j], im, y))
            }
            output[t &* stride] = Relaxed.multiplyAdd(skip, u, y)
        }
    }

    /// x ← Ā ⊙ x + B̄u, y = 2Re(C x) + D u.
    @inline(__always)
    static func stepDiagonal(_ k: UnsafePointer<Float>, modes m: Int, skip: Float, state: UnsafeMutablePointer<Float>,
                             input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, stride: Int, count: Int) {
        let aRe = k, aIm = k + m, bRe = k + 2 &* m, bIm = k + 3 &* m, cRe = k + 4 &* m, cIm = k + 5 &* m
        let xRe = state, xIm = state + m
        for t in 0..<count {
            let u = input[t &* stride]
            var y: Float = 0
            for j in 0..<m {
                let re = aRe[j] * xRe[j] - aIm[j] * xIm[j] + bRe[j] * u
                let im = aRe[j] * xIm[j] + aIm[j] * xRe[j] + bIm[j] * u
                xRe[j] = re
                xIm[j] = im
                y = Relaxed.multiplyAdd(cRe[j], re, Relaxed.multiplyAdd(-cIm[j], im, y))
            }
            output[t &* stride] = Relaxed.multiplyAdd(skip, u, y)
        }
    }
}
