/// One spoken command found in a stream: the model's verdict on the utterance, placed in stream
/// time (seconds since the first sample of the stream, not wall-clock time).
public struct DetectionEvent: Sendable, Equatable {
    public let label: String
    public let score: Float
    /// Utterance onset and end as the energy gate saw them, in seconds of stream time.
    public let start: Double
    public let end: Double
    /// When the event was decided, in seconds of stream time (for latency: decidedAt − end).
    public let decidedAt: Double
    /// Labels with their probabilities, best first.
    public let scores: [(label: String, probability: Float)]

    public static func == (a: DetectionEvent, b: DetectionEvent) -> Bool {
        a.label == b.label && a.score == b.score && a.start == b.start && a.end == b.end && a.decidedAt == b.decidedAt
    }
}
