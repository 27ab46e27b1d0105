/// One spoken command found in a stream: the model's verdict on the utterance, placed in stream
/// time (seconds since the first sample of the stream, not wall-clock time).
public struct DetectionEvent: Sendable, Equatable {
    public let label: String
    public let score: Float
    /// Where the word was, in seconds of stream time: for a clip head, the utterance's onset and
    /// end as the energy gate saw them; for a streaming head, the first frame of the word's
    /// activity and the frame of its peak.
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
