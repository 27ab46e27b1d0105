import CS4Step

/// The per-sample S4 recurrence in Float for one block of eight channels over `count` samples of
/// a [T × H] buffer (rows `stride` floats apart). The state is carried in place, so running a
/// signal in chunks of any size gives the same result, bit for bit, as running it sample by sample.
extension DiscreteLayer {
    func run(
        block: Int, state: UnsafeMutablePointer<Lanes>, scratch: UnsafeMutablePointer<Lanes>,
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, stride: Int, count: Int
    ) {
        let lanes = min(Self.laneCount, width - block * Self.laneCount)
        constants.withUnsafeBufferPointer { buffer in
            let k = buffer.baseAddress! + block &* blockStride
            if isLowRank && rank == 1 {
                Self.stepRankOne(
                    k, modes: modes, skip: skip[block], state: state, scratch: scratch,
                    input: input, output: output, stride: stride, count: count, lanes: lanes)
            } else if isLowRank {
                Self.stepLowRank(
                    k, modes: modes, rank: rank, skip: skip[block], state: state, scratch: scratch,
                    input: input, output: output, stride: stride, count: count, lanes: lanes)
            } else if lanes == Self.laneCount {
                // A constant lane count: the full-width loads and stores, with no branch in the loop.
                Self.stepDiagonal(
                    k, modes: modes, skip: skip[block], state: state,
                    input: input, output: output, stride: stride, count: count, lanes: Self.laneCount)
            } else {
                Self.stepDiagonal(
                    k, modes: modes, skip: skip[block], state: state,
                    input: input, output: output, stride: stride, count: count, lanes: lanes)
            }
        }
    }

    /// Blocks `block` and `block + 1`, both full, at once in 512-bit vectors (`hasWideStep`): the
    /// diagonal step of `stepDiagonal` in C (`CS4Step`), the same bits twice as wide.
    func runPair(
        block: Int, state: UnsafeMutablePointer<Lanes>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        stride: Int, count: Int
    ) {
        let floats = Self.laneCount
        constants.withUnsafeBufferPointer { constants in
            skip.withUnsafeBufferPointer { skip in
                constants.baseAddress!.withMemoryRebound(to: Float.self, capacity: constants.count &* floats) { k in
                    skip.baseAddress!.withMemoryRebound(to: Float.self, capacity: skip.count &* floats) { d in
                        state.withMemoryRebound(to: Float.self, capacity: 2 &* stateStride &* floats) { s in
                            let first = block &* blockStride &* floats, second = first &+ blockStride &* floats
                            s4_step_diagonal_pair(
                                k + first, k + second, modes, d + block &* floats, d + (block &+ 1) &* floats, s,
                                s + stateStride &* floats, input, output, stride, count)
                        }
                    }
                }
            }
        }
    }

    /// c + a·b, fused where the build targets FMA hardware.
    @inline(__always)
    static func fma(_ a: Lanes, _ b: Lanes, _ c: Lanes) -> Lanes {
        #if S4_FMA
        c.addingProduct(a, b)
        #else
        c + a * b
        #endif
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
    /// sample (docs/s4-reference.md §4.1). y = 2Re(C x) + D u.
    @inline(__always)
    static func stepLowRank(
        _ k: UnsafePointer<Lanes>, modes m: Int, rank: Int, skip: Lanes,
        state: UnsafeMutablePointer<Lanes>, scratch: UnsafeMutablePointer<Lanes>,
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        stride: Int, count: Int, lanes: Int
    ) {
        let eRe = k, eIm = k + m, dRe = k + 2 &* m, dIm = k + 3 &* m
        let bRe = k + 4 &* m, bIm = k + 5 &* m, cRe = k + 6 &* m, cIm = k + 7 &* m
        let xRe = state, xIm = state + m
        let sRe = scratch, sIm = scratch + m, w = scratch + 2 &* m
        for t in 0..<count {
            let u = load(input + t &* stride, lanes: lanes)
            // s = E ⊙ x − Σ_r P_r·2Re(P_rᴴ x)
            for j in 0..<m {
                sRe[j] = fma(eRe[j], xRe[j], -eIm[j] * xIm[j])
                sIm[j] = fma(eRe[j], xIm[j], eIm[j] * xRe[j])
            }
            for r in 0..<rank {
                let pRe = k + (8 &+ 4 &* r) &* m, pIm = pRe + m
                // Two partial sums halve the dependency chain of the reduction.
                var v0 = Lanes.zero, v1 = Lanes.zero
                for j in 0..<m { v0 = fma(pRe[j], xRe[j], v0); v1 = fma(pIm[j], xIm[j], v1) }
                let minusV = -2 * (v0 + v1)
                for j in 0..<m {
                    sRe[j] = fma(pRe[j], minusV, sRe[j])
                    sIm[j] = fma(pIm[j], minusV, sIm[j])
                }
            }
            // w_r = 2Re(R̃_r s), all from the same s.
            for r in 0..<rank {
                let rRe = k + (10 &+ 4 &* r) &* m, rIm = rRe + m
                var a0 = Lanes.zero, a1 = Lanes.zero
                for j in 0..<m { a0 = fma(rRe[j], sRe[j], a0); a1 = fma(rIm[j], sIm[j], a1) }
                w[r] = a0 - a1
            }
            for r in 1..<max(1, rank) {
                let pRe = k + (8 &+ 4 &* r) &* m, pIm = pRe + m
                let minusW = -w[r]
                for j in 0..<m {
                    sRe[j] = fma(pRe[j], minusW, sRe[j])
                    sIm[j] = fma(pIm[j], minusW, sIm[j])
                }
            }
            // x = D ⊙ (s − P_0 w_0) + B̄u (rank 0's correction fused in), y = 2Re(C x) + D u.
            let p0Re = k + 8 &* m, p0Im = p0Re + m, minusW0 = -w[0]
            var y0 = skip * u, y1 = Lanes.zero
            for j in 0..<m {
                let re = fma(p0Re[j], minusW0, sRe[j]), im = fma(p0Im[j], minusW0, sIm[j])
                let xr = fma(dRe[j], re, fma(-dIm[j], im, bRe[j] * u))
                let xi = fma(dRe[j], im, fma(dIm[j], re, bIm[j] * u))
                xRe[j] = xr
                xIm[j] = xi
                y0 = fma(cRe[j], xr, y0)
                y1 = fma(cIm[j], xi, y1)
            }
            store(y0 - y1, to: output + t &* stride, lanes: lanes)
        }
    }

    /// The rank-1 case of `stepLowRank` (HiPPO-LegS) in three passes over the modes instead of
    /// five: each pass fuses an update with the reduction that follows it.
    @inline(__always)
    static func stepRankOne(
        _ k: UnsafePointer<Lanes>, modes m: Int, skip: Lanes,
        state: UnsafeMutablePointer<Lanes>, scratch: UnsafeMutablePointer<Lanes>,
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        stride: Int, count: Int, lanes: Int
    ) {
        let eRe = k, eIm = k + m, dRe = k + 2 &* m, dIm = k + 3 &* m
        let bRe = k + 4 &* m, bIm = k + 5 &* m, cRe = k + 6 &* m, cIm = k + 7 &* m
        let pRe = k + 8 &* m, pIm = k + 9 &* m, rRe = k + 10 &* m, rIm = k + 11 &* m
        let xRe = state, xIm = state + m
        let sRe = scratch, sIm = scratch + m
        for t in 0..<count {
            let u = load(input + t &* stride, lanes: lanes)
            // s = E ⊙ x, v = 2Re(Pᴴx)
            var v0 = Lanes.zero, v1 = Lanes.zero
            for j in 0..<m {
                let xr = xRe[j], xi = xIm[j]
                sRe[j] = fma(eRe[j], xr, -eIm[j] * xi)
                sIm[j] = fma(eRe[j], xi, eIm[j] * xr)
                v0 = fma(pRe[j], xr, v0)
                v1 = fma(pIm[j], xi, v1)
            }
            let minusV = -2 * (v0 + v1)
            // s −= P v, w = 2Re(R̃ s) (v and w are kept negated: the updates are then one fma)
            var w0 = Lanes.zero, w1 = Lanes.zero
            for j in 0..<m {
                let sr = fma(pRe[j], minusV, sRe[j]), si = fma(pIm[j], minusV, sIm[j])
                sRe[j] = sr
                sIm[j] = si
                w0 = fma(rRe[j], sr, w0)
                w1 = fma(rIm[j], si, w1)
            }
            let minusW = w1 - w0
            // x = D ⊙ (s − P w) + B̄u, y = 2Re(C x) + D u
            var y0 = skip * u, y1 = Lanes.zero
            for j in 0..<m {
                let re = fma(pRe[j], minusW, sRe[j]), im = fma(pIm[j], minusW, sIm[j])
                let xr = fma(dRe[j], re, fma(-dIm[j], im, bRe[j] * u))
                let xi = fma(dRe[j], im, fma(dIm[j], re, bIm[j] * u))
                xRe[j] = xr
                xIm[j] = xi
                y0 = fma(cRe[j], xr, y0)
                y1 = fma(cIm[j], xi, y1)
            }
            store(y0 - y1, to: output + t &* stride, lanes: lanes)
        }
    }

    /// x̃ ← Ā ⊙ x̃ + u, y = 2Re(C̃ x̃) + D u (x̃ = x / B̄, C̃ = C ⊙ B̄: `DiscreteLayer`). Over a chunk,
    /// four modes at a time are held in registers for all its steps, so T steps read each mode's
    /// constants and state once, not T times, and their terms are added to the output rows after
    /// D u. A single step runs through the modes once with y in a register. Both add the modes'
    /// terms to y in mode order, so chunking changes no bit.
    @inline(__always)
    static func stepDiagonal(
        _ k: UnsafePointer<Lanes>, modes m: Int, skip: Lanes, state: UnsafeMutablePointer<Lanes>,
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        stride: Int, count: Int, lanes: Int
    ) {
        if count == 1 {
            let u = load(input, lanes: lanes)
            var y = skip * u
            for j in 0..<m {
                var mode = DiagonalMode(k, modes: m, state: state, index: j)
                y = mode.step(u, adding: y)
                mode.save(to: state, modes: m, index: j)
            }
            store(y, to: output, lanes: lanes)
            return
        }
        for t in 0..<count {
            store(skip * load(input + t &* stride, lanes: lanes), to: output + t &* stride, lanes: lanes)
        }
        var j = 0
        while j &+ 4 <= m {
            var m0 = DiagonalMode(k, modes: m, state: state, index: j)
            var m1 = DiagonalMode(k, modes: m, state: state, index: j &+ 1)
            var m2 = DiagonalMode(k, modes: m, state: state, index: j &+ 2)
            var m3 = DiagonalMode(k, modes: m, state: state, index: j &+ 3)
            for t in 0..<count {
                let u = load(input + t &* stride, lanes: lanes), row = output + t &* stride
                let y = m0.step(u, adding: load(row, lanes: lanes))
                store(m3.step(u, adding: m2.step(u, adding: m1.step(u, adding: y))), to: row, lanes: lanes)
            }
            m0.save(to: state, modes: m, index: j)
            m1.save(to: state, modes: m, index: j &+ 1)
            m2.save(to: state, modes: m, index: j &+ 2)
            m3.save(to: state, modes: m, index: j &+ 3)
            j &+= 4
        }
        while j < m {
            var mode = DiagonalMode(k, modes: m, state: state, index: j)
            for t in 0..<count {
                let row = output + t &* stride
                store(mode.step(load(input + t &* stride, lanes: lanes), adding: load(row, lanes: lanes)), to: row, lanes: lanes)
            }
            mode.save(to: state, modes: m, index: j)
            j &+= 1
        }
    }
}

/// One mode of a diagonal layer in registers: Ā = a + i·b and C̃ = c − i·d as stored
/// (`DiscreteLayer`), the state x̃ = r + i·i.
private struct DiagonalMode {
    typealias Lanes = DiscreteLayer.Lanes
    let a, b, c, d: Lanes
    var r, i: Lanes

    @inline(__always)
    init(_ k: UnsafePointer<Lanes>, modes m: Int, state: UnsafePointer<Lanes>, index j: Int) {
        a = k[j]; b = k[m &+ j]; c = k[2 &* m &+ j]; d = k[3 &* m &+ j]
        r = state[j]; i = state[m &+ j]
    }

    @inline(__always)
    func save(to state: UnsafeMutablePointer<Lanes>, modes m: Int, index j: Int) {
        state[j] = r
        state[m &+ j] = i
    }

    /// x̃ ← Ā x̃ + u; y plus the mode's term 2Re(C̃ x̃).
    @inline(__always)
    mutating func step(_ u: Lanes, adding y: Lanes) -> Lanes {
        let next = DiscreteLayer.fma(a, r, DiscreteLayer.fma(-b, i, u))
        i = DiscreteLayer.fma(a, i, b * r)
        r = next
        return DiscreteLayer.fma(c, r, DiscreteLayer.fma(d, i, y))
    }
}
