import Numerics
import S4Core

/// Which of S4's two views computes the network.
public enum InferenceMode: String, Sendable, CaseIterable {
    /// Constant-memory recurrence, sample by sample (in chunks).
    case recurrent
    /// FFT convolution with the kernel K̄ over a whole window.
    case convolution
}

/// The model's verdict on one window.
public struct Classification: Sendable {
    public let labels: [String]
    /// Softmax of the logits, in label order.
    public let probabilities: [Float]
    /// Window position in seconds of the input.
    public let start: Double
    public let end: Double

    public init(labels: [String], logits: [Float], start: Double, end: Double) {
        self.labels = labels
        probabilities = Self.softmax(logits)
        self.start = start
        self.end = end
    }

    /// Probabilities from logits (shifted by the maximum, so large logits cannot overflow).
    public static func softmax(_ logits: [Float]) -> [Float] {
        let peak = logits.max() ?? 0
        let exps = logits.map { Float.exp($0 - peak) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }

    public var bestIndex: Int { probabilities.indices.max { probabilities[$0] < probabilities[$1] } ?? 0 }
    public var label: String { labels[bestIndex] }
    public var score: Float { probabilities[bestIndex] }
}

/// Classifies buffers of float samples at a given rate in fixed windows of the model's clip
/// length (1 s for Speech Commands), each from a zero state, by either mode. The sampling rate is
/// handled by rescaling Δ, never by resampling.
public struct Classifier: Sendable {
    public let model: S4Model
    public let sampleRate: Double
    public let mode: InferenceMode
    public let windowLength: Int
    private let recurrent: RecurrentNetwork?
    private let convolution: ConvolutionNetwork?

    /// A streaming head runs in recurrent mode only (`mode` must be `.recurrent`).
    public init(model: S4Model, sampleRate: Double, mode: InferenceMode) {
        precondition(mode == .recurrent || model.metadata.headPooling == .mean, "a streaming head runs in recurrent mode")
        self.model = model
        self.sampleRate = sampleRate
        self.mode = mode
        windowLength = model.windowLength(forSampleRate: sampleRate)
        switch mode {
        case .recurrent:
            recurrent = RecurrentNetwork(model: model, sampleRate: sampleRate)
            convolution = nil
        case .convolution:
            recurrent = nil
            convolution = ConvolutionNetwork(model: model, sampleRate: sampleRate, length: windowLength)
        }
    }

    /// One result per window. Consecutive windows of L samples; a short last part is zero-padded
    /// (in the raw sample domain, as in training) when it holds at least half a window or is the
    /// only part, and dropped otherwise.
    public func classify(_ samples: [Float]) -> [Classification] {
        let l = windowLength
        var results: [Classification] = []
        var start = 0
        repeat {
            let available = min(l, samples.count - start)
            if available < l && available * 2 < l && !results.isEmpty { break }
            var window = Array(samples[start..<(start + available)])
            window += repeatElement(0, count: l - available)
            results.append(
                Classification(
                    labels: model.labels, logits: logits(window),
                    start: Double(start) / sampleRate, end: Double(start + l) / sampleRate))
            start += l
        } while start < samples.count
        return results
    }

    /// Logits of one window of exactly L samples. A streaming head runs over the window and half
    /// a window of silence after it (it speaks once a word is complete); the window's
    /// probabilities are those of the frame whose smoothed posteriors are surest of a command, as
    /// `listen` would score it (returned as their logarithms).
    public func logits(_ window: [Float]) -> [Float] {
        if let recurrent {
            let state = recurrent.makeState()
            guard model.metadata.headPooling == .frame else {
                recurrent.process(window, state: state)
                return recurrent.logits(state)
            }
            let frameSeconds = model.metadata.pooling!.frameSeconds
            var smoother = PosteriorSmoother(
                labels: model.labels, frames: Int((DetectorConfiguration().smoothingSeconds / frameSeconds).rounded()))
            var best: (value: Float, posteriors: [Float]) = (-1, [])
            let padded = window + repeatElement(0, count: windowLength / 2)
            padded.withUnsafeBufferPointer { samples in
                recurrent.stream(samples, state: state) { logits in
                    let smoothed = smoother.add(Classification.softmax(Array(logits)))
                    let value = smoother.bestCommand(smoothed).value
                    if value > best.value { best = (value, smoothed) }
                }
            }
            return best.posteriors.map { Float.log(max($0, .leastNormalMagnitude)) }
        }
        return convolution!.logits(window)
    }
}
