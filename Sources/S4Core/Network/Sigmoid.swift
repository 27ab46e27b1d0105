/// The logistic function σ(x) = 1/(1 + e^−x) of the GLU gate, eight values at a time.
///
/// e^x is computed as 2^n·e^r with n = round(x·log₂e) and |r| ≤ ½ln 2, e^r by its Taylor
/// polynomial to degree 7 (truncation error < 2e−9, below Float resolution), 2^n by building the
/// exponent bits. Inputs are clamped to ±80, where σ is 0 or 1 to Float precision anyway.
enum Sigmoid {
    typealias Lanes = SIMD8<Float>

    @inline(__always)
    static func exp(_ x: Lanes) -> Lanes {
        var x = x
        x.replace(with: 80, where: x .> 80)
        x.replace(with: -80, where: x .< -80)
        // Adding 1.5·2²³ rounds y = x·log₂e to an integer n held in the low mantissa bits.
        let magic: Float = 12_582_912
        let shifted = x * 1.442_695_04 + magic
        let n = shifted - magic
        // r = x − n·ln2 with ln2 split in two parts, so the product is exact in the first part.
        let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-6
        var poly = r * (1.0 / 5040) + 1.0 / 720
        poly = poly * r + 1.0 / 120
        poly = poly * r + 1.0 / 24
        poly = poly * r + 1.0 / 6
        poly = poly * r + 0.5
        poly = poly * r + 1
        poly = poly * r + 1
        let integer =
            unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(Lanes(repeating: magic), to: SIMD8<Int32>.self)
        return poly * unsafeBitCast((integer &+ 127) &<< 23, to: Lanes.self)
    }

    @inline(__always)
    static func value(_ x: Lanes) -> Lanes { 1 / (1 + exp(-x)) }
}
