import CFFTW3
import Dispatch

/// Causal convolution of each of H channels with its own kernel of length L, through FFTW in
/// single precision, zero-padded to n ≥ 2L so nothing wraps around (docs/s4-reference.md §3.1 step 6).
/// Kernel spectra are computed once; `apply` only allocates its own transform buffers, so one
/// instance serves several threads.
final class FFTConvolution: @unchecked Sendable {
    let length: Int
    let size: Int
    let channelCount: Int
    /// Complex values per kernel spectrum, n/2 + 1 rounded up so every spectrum starts as aligned
    /// as FFTW's own allocation (new-array execution requires the planned alignment).
    private let spectrumStride: Int
    private let spectra: UnsafeMutablePointer<fftwf_complex>
    private let forwardPlan: OpaquePointer
    private let inversePlan: OpaquePointer

    /// - Parameter kernels: H kernels of length L (Double set-up results, rounded to Float here).
    init(kernels: [[Double]], length: Int) {
        self.length = length
        channelCount = kernels.count
        var n = 1
        while n < 2 * length { n <<= 1 }
        size = n
        let bins = n / 2 + 1
        spectrumStride = (bins + 7) & ~7
        spectra = fftwf_alloc_complex(spectrumStride * kernels.count)
        let real = fftwf_alloc_real(n)!, spectrum = fftwf_alloc_complex(bins)!
        defer { fftwf_free(real); fftwf_free(spectrum) }
        (forwardPlan, inversePlan) = fftwPlannerLock.withLock {
            (
                fftwf_plan_dft_r2c_1d(Int32(n), real, spectrum, UInt32(FFTW_ESTIMATE))!,
                fftwf_plan_dft_c2r_1d(Int32(n), spectrum, real, UInt32(FFTW_ESTIMATE))!
            )
        }
        for (channel, kernel) in kernels.enumerated() {
            precondition(kernel.count == length)
            real.initialize(repeating: 0, count: n)
            for k in 0..<length { real[k] = Float(kernel[k]) }
            fftwf_execute_dft_r2c(forwardPlan, real, spectra + channel * spectrumStride)
        }
    }

    deinit {
        fftwPlannerLock.withLock {
            fftwf_destroy_plan(forwardPlan)
            fftwf_destroy_plan(inversePlan)
        }
        fftwf_free(spectra)
    }

    /// y[t, h] = Σ_{k ≤ t} K̄_h[k]·u[t − k, h] + D_h·u[t, h] for t < rows ≤ L, on [rows × H] buffers.
    func apply(_ input: UnsafePointer<Float>, to output: UnsafeMutablePointer<Float>, rows: Int, skip: [Float]) {
        precondition(rows <= length)
        let n = size, bins = n / 2 + 1, h = channelCount
        let real = fftwf_alloc_real(n)!, spectrum = fftwf_alloc_complex(bins)!
        defer { fftwf_free(real); fftwf_free(spectrum) }
        let scale = 1 / Float(n)
        for channel in 0..<h {
            real.initialize(repeating: 0, count: n)
            for t in 0..<rows { real[t] = input[t &* h &+ channel] }
            fftwf_execute_dft_r2c(forwardPlan, real, spectrum)
            let kernel = spectra + channel &* spectrumStride
            for j in 0..<bins {
                let (a, b) = spectrum[j], (c, d) = kernel[j]
                spectrum[j] = (a * c - b * d, a * d + b * c)
            }
            fftwf_execute_dft_c2r(inversePlan, spectrum, real)
            let d = skip[channel]
            for t in 0..<rows { output[t &* h &+ channel] = real[t] * scale + d * input[t &* h &+ channel] }
        }
    }
}
