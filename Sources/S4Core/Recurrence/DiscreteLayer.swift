/// The H channels of one layer discretised at one Δ scale, as packed Float constants for the
/// per-sample loop. Set-up (Woodbury constants, B̄) is done in Double by `DiscreteChannel`; only
/// the hot loop runs in Float.
///
/// Per channel, M floats each: DPLR `E_re E_im D_re D_im B̄_re B̄_im 2C_re 2C_im`, then per rank
/// `P_re P_im 2R̃_re 2R̃_im`; diagonal `Ā_re Ā_im B̄_re B̄_im 2C_re 2C_im`.
struct DiscreteLayer: Sendable {
    let modes: Int
    let rank: Int
    let isLowRank: Bool
    let channelStride: Int
    let constants: [Float]
    /// D, per channel.
    let skip: [Float]

    init(channels: [SSMChannel], stepScale: Double) {
        let first = channels[0]
        modes = first.modeCount
        rank = first.p.count
        isLowRank = first.isLowRank
        channelStride = (isLowRank ? 8 + 4 * rank : 6) * modes
        var constants: [Float] = []
        constants.reserveCapacity(channelStride * channels.count)
        for channel in channels {
            let discrete = channel.discretized(step: channel.step * stepScale)
            let twoC = discrete.c.map { 2 * $0 }
            switch discrete.transition {
            case .lowRank(let woodbury):
                for values in [woodbury.e, woodbury.dInverse, discrete.bBar, twoC] {
                    constants += values.map { Float($0.real) } + values.map { Float($0.imaginary) }
                }
                for (p, r) in zip(woodbury.p, woodbury.rTilde) {
                    constants += p.map { Float($0.real) } + p.map { Float($0.imaginary) }
                    constants += r.map { Float(2 * $0.real) } + r.map { Float(2 * $0.imaginary) }
                }
            case .diagonal(let a):
                for values in [a, discrete.bBar, twoC] {
                    constants += values.map { Float($0.real) } + values.map { Float($0.imaginary) }
                }
            }
        }
        self.constants = constants
        skip = channels.map { Float($0.d) }
    }

    /// Floats of recurrent state per channel: M complex values, real parts then imaginary parts.
    var stateStride: Int { 2 * modes }
    /// Floats of scratch space the step needs.
    var scratchCount: Int { 2 * modes + rank }
}
