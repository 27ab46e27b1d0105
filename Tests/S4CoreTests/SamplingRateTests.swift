import Foundation
import Numerics
import S4RandomModel
import Testing

@testable import S4Core

/// Δ rescaling (docs/s4-reference.md §5): the same band-limited signal sampled at 8, 16 and 48 kHz
/// gives the same continuous-time output when Δ_run = Δ_train·f_train/f, and not when Δ is left alone.
@Suite struct SamplingRateTests {
    /// A signal with content below 1.5 kHz (or `highest`), so it is band-limited at all three rates.
    static func signal(rate: Double, seconds: Double = 0.25, highest: Double = 1330) -> [Double] {
        (0..<Int(seconds * rate)).map { i in
            let t = Double(i) / rate
            return 0.5 * sin(2 * .pi * highest / 6 * t) + 0.3 * sin(2 * .pi * highest / 2 * t + 1) + 0.2
                * sin(2 * .pi * highest * t + 2)
        }
    }

    /// Output at 16 kHz against output at `rate`, compared at the common instants.
    static func mismatch(_ channel: SSMChannel, rate: Double, scaleStep: Bool) -> Double {
        func run(_ u: [Double], step: Double) -> [Double] {
            let discrete = channel.discretized(stepSize: step)
            var x = [Complex<Double>](repeating: .zero, count: channel.modeCount)
            return u.map { discrete.step(&x, input: $0) }
        }
        let reference = run(signal(rate: 16000), step: channel.stepSize)
        let other = run(signal(rate: rate), step: scaleStep ? channel.stepSize * 16000 / rate : channel.stepSize)
        // Common instants: t = k/gcd-rate; skip the first 10 ms of start-up transient.
        let (small, large, ratio) = rate < 16000 ? (other, reference, Int(16000 / rate)) : (reference, other, Int(rate / 16000))
        let start = small.count / 25
        let a = (start..<small.count).map { small[$0] }, b = (start..<small.count).map { large[$0 * ratio] }
        return relativeError(rate < 16000 ? a : b, rate < 16000 ? b : a)
    }

    @Test(arguments: [8000.0, 48000.0])
    func rescaledStepMatchesContinuousTime(rate: Double) {
        // Δ_train = 0.001 at 16 kHz, the case measured in the reference (1.3% at 8 kHz).
        let channel = randomChannel(stateSize: 64, step: 0.001, seed: 17)
        let scaled = Self.mismatch(channel, rate: rate, scaleStep: true)
        let unscaled = Self.mismatch(channel, rate: rate, scaleStep: false)
        #expect(scaled < 0.05, "rescaled Δ: relative error \(scaled)")
        #expect(unscaled > 0.3, "unchanged Δ: relative error \(unscaled)")
    }

    /// The whole network: what the blocks compute over time of the same utterance at 8 and 48 kHz
    /// follow those at 16 kHz with Δ rescaled (compared at common instants, after 10 ms), and
    /// depart from them with Δ unchanged.
    @Test(arguments: [8000.0, 48000.0])
    func networkFeaturesFollowTheRate(rate: Double) {
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.layerCount = 2
        configuration.stateSize = 32
        let model = S4Model.random(configuration)
        let h = model.stages[0].width
        // What the blocks add to the residual stream (the encoder's part is rate-free anyway).
        func features(_ samples: [Double], networkRate: Double) -> [Float] {
            let trace = ConvolutionNetwork(model: model, sampleRate: networkRate, length: samples.count)
                .trace(samples.map(Float.init))
            return zip(trace.residuals.last!, trace.residuals.first!).map { $0 - $1 }
        }
        let reference = features(Self.signal(rate: 16000, highest: 500), networkRate: 16000)
        let samples = Self.signal(rate: rate, highest: 500)
        func mismatch(_ other: [Float]) -> Double {
            let down = rate < 16000
            let ratio = Int(down ? 16000 / rate : rate / 16000)
            let rows = (down ? other.count : reference.count) / h  // rows at the lower rate
            var a: [Double] = [], b: [Double] = []
            for k in (rows / 25)..<rows {
                let (i, j) = down ? (k * ratio, k) : (k, k * ratio)  // reference row, other row
                for c in 0..<h { a.append(Double(other[j * h + c])); b.append(Double(reference[i * h + c])) }
            }
            return relativeError(a, b)
        }
        let scaled = mismatch(features(samples, networkRate: rate))
        let unscaled = mismatch(features(samples, networkRate: 16000))
        #expect(scaled < 0.1, "rescaled Δ: \(scaled)")
        #expect(unscaled > 0.3, "unchanged Δ: \(unscaled)")
    }
}
