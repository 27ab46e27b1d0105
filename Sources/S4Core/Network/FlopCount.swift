/// Arithmetic counts for reporting achieved GFLOP/s (`s4listen bench`). A multiply-add counts
/// 2; counted are the SSM, the linear maps, the norms and the FFTs; activations are not.
extension S4Model {
    /// Floating-point operations per input sample in recurrent mode.
    public var recurrentFlopsPerSample: Double {
        let h = Double(width), m = Double(metadata.stateSize / 2), r = Double(metadata.rank)
        // Per mode: E⊙x 6, per rank 16 (two real dots, two updates), D⊙s + B̄u 10, output 4 (DPLR);
        // Ā⊙x + B̄u 10, output 4 (diagonal).
        let ssmPerChannel = metadata.kernel == .dplr ? m * (20 + 16 * r) : m * 14
        var total = 2 * h  // encoder
        for block in blocks {
            total += 5 * h + h * (ssmPerChannel + 2) + 2 * h * Double(block.output.outputCount)
        }
        return total + 5 * h  // final norm
    }

    /// Floating-point operations for one window of L samples in convolution mode (kernel spectra cached).
    public func convolutionFlops(length: Int) -> Double {
        var n = 1
        while n < 2 * length { n <<= 1 }
        let fftFlops = 2.5 * Double(n) * Double(n.trailingZeroBitCount)
        let perChannel = 2 * fftFlops + 6 * Double(n / 2 + 1) + 2 * Double(length)
        let h = Double(width), l = Double(length)
        var total = 2 * h * l
        for block in blocks {
            total += h * perChannel + l * (5 * h + 2 * h * Double(block.output.outputCount))
        }
        return total + 5 * h * l
    }
}
