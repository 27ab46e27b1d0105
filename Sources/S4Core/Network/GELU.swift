/// GELU in its exact form, x·Φ(x) = ½x(1 + erf(x/√2)) (docs/s4-reference.md §7.3 pitfall 14: not the
/// tanh approximation), eight values at a time.
///
/// erf is a rational approximation fitted here (least squares with Lawson reweighting on [0, 4]):
/// erf(x) ≈ x·P(x²)/Q(x²) for |x| ≤ 4 and ±1 beyond, where erfc(4) ≈ 1.5e−8 is below Float
/// resolution. Maximum error 1.5e−9 in Double and 3.7e−7 in Float evaluation, against a few
/// ulp for libm's erff, at a fraction of the cost of a scalar call per value.
enum GELU {
    typealias Lanes = SIMD8<Float>
    @inline(__always)
    static func erf(_ x: Lanes) -> Lanes {
        var clamped = x
        clamped.replace(with: 4, where: x .> 4)
        clamped.replace(with: -4, where: x .< -4)
        let z = clamped * clamped
        var numerator = z * -1.3674978149857964e-08 + 4.7822208053896476e-06
        numerator = numerator * z + 0.0003827540379860578
        numerator = numerator * z + 0.0038395764113484656
        numerator = numerator * z + 0.054333574566426956
        numerator = numerator * z + 0.18470658128514147
        numerator = numerator * z + 1.1283791820878717
        var denominator = z * 6.402543116598367e-05 + 0.00130967352155676
        denominator = denominator * z + 0.015453813004586928
        denominator = denominator * z + 0.11382606068196954
        denominator = denominator * z + 0.4970254912895534
        denominator = denominator * z + 1
        return clamped * numerator / denominator
    }

    @inline(__always)
    static func value(_ x: Lanes) -> Lanes {
        0.5 * x * (1 + erf(x * 0.707_106_77))
    }

    /// Applies GELU in place to `count` floats.
    static func apply(_ values: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i &+ 8 <= count {
            let raw = UnsafeMutableRawPointer(values + i)
            raw.storeBytes(of: value(raw.loadUnaligned(as: Lanes.self)), as: Lanes.self)
            i &+= 8
        }
        if i < count {
            var tail = Lanes.zero
            for k in 0..<(count &- i) { tail[k] = values[i &+ k] }
            let result = value(tail)
            for k in 0..<(count &- i) { values[i &+ k] = result[k] }
        }
    }
}
