import Numerics

/// Complex × real scaling, used throughout the Double set-up code.
extension Complex where RealType == Double {
    @inline(__always) static func * (z: Complex, a: Double) -> Complex { Complex(z.real * a, z.imaginary * a) }
    @inline(__always) static func * (a: Double, z: Complex) -> Complex { Complex(z.real * a, z.imaginary * a) }
    @inline(__always) static func / (z: Complex, a: Double) -> Complex { Complex(z.real / a, z.imaginary / a) }
    @inline(__always) static func + (a: Double, z: Complex) -> Complex { Complex(a + z.real, z.imaginary) }
    @inline(__always) static func - (a: Double, z: Complex) -> Complex { Complex(a - z.real, -z.imaginary) }
}
