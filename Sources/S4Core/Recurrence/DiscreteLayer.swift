import CS4Step
import Numerics

/// The H channels of one layer discretised at one Δ scale, as Float constants laid out for the
/// per-sample loop. Set-up (Woodbury constants, B̄) is done in Double by `DiscreteChannel`; only
/// the hot loop runs in Float.
///
/// Channels are grouped in blocks of eight, one channel per SIMD lane, so every operation of the
/// step is lane-wise (no horizontal sums) and a block reads its inputs from, and writes its outputs
/// to, eight adjacent floats of a [T × H] row. Per block, M lanes each: DPLR `E_re E_im D_re D_im
/// B̄_re B̄_im 2C_re 2C_im`, then per rank `P_re P_im 2R̃_re 2R̃_im`; diagonal `Ā_re Ā_im 2C̃_re
/// −2C̃_im` with C̃ = C ⊙ B̄: its state is x̃ = x / B̄ (x̃ ← Ā x̃ + u), which gives the same output as
/// x with two products fewer per mode and a third less to read. Lanes past H hold zeros.
struct DiscreteLayer: Sendable {
    typealias Lanes = SIMD8<Float>
    static let laneCount = 8

    let width: Int
    let modes: Int
    let rank: Int
    let isLowRank: Bool
    let blockCount: Int
    /// Lanes of constants per block.
    let blockStride: Int
    let constants: [Lanes]
    /// D, per block.
    let skip: [Lanes]
    /// Whether two full blocks at a time run in 512-bit vectors (`runPair`): a diagonal layer on a
    /// processor with AVX-512.
    let hasWideStep: Bool

    init(channels: [SSMChannel], stepScale: Double) {
        let first = channels[0]
        width = channels.count
        modes = first.modeCount
        rank = first.p.count
        isLowRank = first.isLowRank
        hasWideStep = !isLowRank && wideStepAvailable
        blockCount = (width + Self.laneCount - 1) / Self.laneCount
        let fields = isLowRank ? 8 + 4 * rank : 4
        blockStride = fields * modes
        var constants = [Lanes](repeating: .zero, count: blockStride * blockCount)
        var skip = [Lanes](repeating: .zero, count: blockCount)
        for (h, channel) in channels.enumerated() {
            let block = h / Self.laneCount, lane = h % Self.laneCount
            let discrete = channel.discretized(stepSize: channel.stepSize * stepScale)
            let twoC = discrete.c.map { 2 * $0 }
            var columns: [[Double]] = []
            func add(_ values: [Complex<Double>], scale: Double = 1) {
                columns.append(values.map { scale * $0.real })
                columns.append(values.map { scale * $0.imaginary })
            }
            switch discrete.transition {
            case .lowRank(let woodbury):
                add(woodbury.e); add(woodbury.inverseDiagonal); add(discrete.bBar); add(twoC)
                for (p, r) in zip(woodbury.p, woodbury.rTilde) { add(p); add(r, scale: 2) }
            case .diagonal(let a):
                add(a)
                let twoCTilde = zip(twoC, discrete.bBar).map { $0 * $1 }
                columns.append(twoCTilde.map(\.real))
                columns.append(twoCTilde.map { -$0.imaginary })
            }
            for (f, column) in columns.enumerated() {
                for (m, value) in column.enumerated() {
                    constants[block * blockStride + f * modes + m][lane] = Float(value)
                }
            }
            skip[block][lane] = Float(channel.d)
        }
        self.constants = constants
        self.skip = skip
    }

    /// Lanes of recurrent state per block: M complex values, real parts then imaginary parts.
    var stateStride: Int { 2 * modes }
    /// Lanes of scratch space the step needs.
    var scratchCount: Int { 2 * modes + rank }
}

/// Whether this processor runs the 512-bit diagonal step (`CS4Step`): asked once.
let wideStepAvailable = s4_step_wide_available()
