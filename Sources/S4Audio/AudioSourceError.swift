import S4Core

/// Why audio could not be read; each message names the source and the problem.
public enum AudioSourceError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(source: String, reason: String)
    case unsupportedRate(source: String, rate: Int)
    case noAudio(source: String)
    case readFailed(source: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let source, let reason): "\(source): cannot read audio: \(reason)"
        case .unsupportedRate(let source, let rate):
            "\(source): sampling rate \(rate) Hz is outside \(supportedSampleRates.lowerBound)…\(supportedSampleRates.upperBound) Hz"
        case .noAudio(let source): "\(source): contains no audio frames"
        case .readFailed(let source, let reason): "\(source): read failed: \(reason)"
        }
    }
}
