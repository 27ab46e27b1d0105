import Foundation

/// The boundary between the input-rate stage and the frame stages (docs/model-format.md): the
/// rectified output averaged over frames of τ seconds, log-compressed with a floor, then a
/// per-channel affine norm. Frames are defined in seconds, so the stages after it never see the
/// input rate.
public struct FramePooling: Sendable {
    public let frameSeconds: Double
    public let rectifier: ModelMetadata.Pooling.Rectifier
    public let logFloor: Float
    /// The pooled features' norm (a BatchNorm in eval form).
    public let norm: Normalization

    public init(_ description: ModelMetadata.Pooling, norm: Normalization) {
        frameSeconds = description.frameSeconds
        rectifier = description.rectifier
        logFloor = Float(description.logFloor)
        self.norm = norm
    }

    /// Where the frames of a stream at `sampleRate` begin.
    public func boundaries(sampleRate: Double) -> FrameBoundaries {
        FrameBoundaries(frameSeconds: frameSeconds, sampleRate: sampleRate)
    }

    @inline(__always)
    func rectify(_ y: Float) -> Float {
        switch rectifier {
        case .square: y * y
        case .abs: Swift.abs(y)
        }
    }

    /// log(mean + floor) of `width` running sums over `count` samples, then the norm.
    func finishFrame(sums: UnsafeMutablePointer<Double>, count: Int, width: Int, into row: UnsafeMutablePointer<Float>) {
        let inverse = 1 / Double(count)
        for j in 0..<width { row[j] = Foundation.log(Float(sums[j] * inverse) + logFloor) }
        norm.apply(row, to: row, rows: 1)
    }
}

/// Frame k of a stream at rate f holds the samples n with b_k ≤ n < b_{k+1}, b_k = ⌈k·τ·f − 10⁻⁶⌉,
/// τ·f rounded to 10⁻⁹: sample n is in frame ⌊n / (τ·f)⌋ even when a frame is not a whole number
/// of samples (441 at 44.1 kHz is, 110.25 at 11.025 kHz is not). The training code uses the same rule.
public struct FrameBoundaries: Sendable {
    /// τ·f, samples per frame (possibly fractional).
    public let samplesPerFrame: Double

    public init(frameSeconds: Double, sampleRate: Double) {
        samplesPerFrame = (frameSeconds * sampleRate * 1e9).rounded() / 1e9
    }

    /// b_k, the first sample of frame k.
    public func start(ofFrame k: Int) -> Int {
        Int((Double(k) * samplesPerFrame - 1e-6).rounded(.up))
    }

    /// Frames completed by the first `samples` samples (a trailing partial frame does not count).
    public func completeFrames(in samples: Int) -> Int {
        var k = Int((Double(samples) / samplesPerFrame).rounded(.down))
        while start(ofFrame: k + 1) <= samples { k += 1 }
        while k > 0 && start(ofFrame: k) > samples { k -= 1 }
        return k
    }
}
