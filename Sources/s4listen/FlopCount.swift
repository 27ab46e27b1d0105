import S4Core

/// Arithmetic counts for reporting achieved GFLOP/s (`s4listen bench`). A multiply-add counts
/// 2; counted are the SSM, the linear maps, the norms, the pooling and the FFTs; activations are not.
extension S4Stage {
    /// Operations of one step of this stage in recurrent mode.
    var recurrentFlopsPerStep: Double {
        let h = Double(width)
        var total = 2 * h * Double(inputWidth)  // encoder
        for layer in layers {
            let channels = layer.channels
            let m = Double(channels[0].modeCount), r = Double(channels[0].p.count)
            // Per mode: E⊙x 6, per rank 16 (two real dots, two updates), D⊙s + B̄u 10, output 4 (DPLR);
            // Ā⊙x̃ + u 7, output 4 (diagonal, its state rescaled by B̄: RecurrentStep.swift).
            let ssmPerChannel = channels[0].isLowRank ? m * (20 + 16 * r) : m * 11
            total += h * (ssmPerChannel + 2)
            if case .block(let block) = layer { total += 5 * h + 2 * h * Double(block.output.outputCount) }
        }
        return total
    }

    /// Operations of one window of `steps` steps in convolution mode (kernel spectra cached).
    func convolutionFlops(steps: Int) -> Double {
        var n = 1
        while n < 2 * steps { n <<= 1 }
        let fftFlops = 2.5 * Double(n) * Double(n.trailingZeroBitCount)
        let perChannel = 2 * fftFlops + 6 * Double(n / 2 + 1) + 2 * Double(steps)
        let h = Double(width), l = Double(steps)
        var total = 2 * h * Double(inputWidth) * l
        for layer in layers {
            total += h * perChannel
            if case .block(let block) = layer { total += l * (5 * h + 2 * h * Double(block.output.outputCount)) }
        }
        return total
    }
}

extension S4Model {
    /// Each stage's operations per input sample in recurrent mode at `sampleRate`; the frame
    /// pooling counts to stage 0 and the final norm to the last stage.
    func recurrentFlopsPerSample(sampleRate: Double) -> [Double] {
        var shares = stages.map(\.recurrentFlopsPerStep)
        if let pooling {
            let h0 = Double(stages[0].width), frame = pooling.boundaries(sampleRate: sampleRate).samplesPerFrame
            shares[0] += 2 * h0 + 5 * h0 / frame
            for s in 1..<shares.count { shares[s] /= frame }
        }
        shares[shares.count - 1] +=
            5 * Double(stages[stages.count - 1].width) / (pooling?.boundaries(sampleRate: sampleRate).samplesPerFrame ?? 1)
        return shares
    }

    /// Each stage's operations for one window of `length` samples in convolution mode.
    func convolutionFlops(length: Int, sampleRate: Double) -> [Double] {
        let frames = pooling?.boundaries(sampleRate: sampleRate).completeFrames(in: length) ?? length
        var shares = stages.map { $0.convolutionFlops(steps: $0.clock == .input ? length : frames) }
        if pooling != nil { shares[0] += 2 * Double(stages[0].width) * Double(length) }
        shares[shares.count - 1] += 5 * Double(stages[stages.count - 1].width) * Double(frames)
        return shares
    }
}
