import Numerics

/// How the continuous system is turned into a discrete one (docs/s4-reference.md §2).
public enum DiscretizationMethod: String, Sendable {
    /// Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A), B̄ = (I − Δ/2·A)⁻¹ΔB. The only choice for DPLR.
    case bilinear
    /// Ā = exp(ΔA), B̄ = A⁻¹(exp(ΔA) − I)B. Diagonal kernels only.
    case zoh
}

/// The continuous-time parameters of one S4 channel, in Double for set-up:
/// x′ = A x + B u, y = 2·Re(C x) + D u, with A = Λ − Σ_r P_r P_rᴴ (DPLR) or A = Λ (diagonal).
///
/// Each of the M = N/2 stored modes stands for a conjugate pair, so the N-dimensional real
/// system is represented exactly by M complex modes and every inner product is 2·Re(Σ …).
public struct SSMChannel: Sendable {
    /// Λ, M modes, Re λ < 0.
    public var lambda: [Complex<Double>]
    /// The low-rank factor P, `rank` rows of M; empty for a diagonal (S4D) channel.
    public var p: [[Complex<Double>]]
    public var b: [Complex<Double>]
    /// The true C (never the length-corrected C̃ of training).
    public var c: [Complex<Double>]
    /// The skip term D.
    public var d: Double
    /// The step size Δ at the model's training rate.
    public var stepSize: Double
    public var method: DiscretizationMethod

    public init(
        lambda: [Complex<Double>], p: [[Complex<Double>]], b: [Complex<Double>], c: [Complex<Double>],
        d: Double, stepSize: Double, method: DiscretizationMethod
    ) {
        self.lambda = lambda; self.p = p; self.b = b; self.c = c; self.d = d; self.stepSize = stepSize; self.method = method
    }

    public var modeCount: Int { lambda.count }
    public var isLowRank: Bool { !p.isEmpty }

    /// The discrete system for step size Δ.
    public func discretized(stepSize delta: Double) -> DiscreteChannel {
        DiscreteChannel(self, stepSize: delta)
    }
}
