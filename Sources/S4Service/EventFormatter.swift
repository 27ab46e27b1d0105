import Foundation
import S4Detection

/// Turns detections into the JSON lines of `s4listen listen` (one object per line).
public struct EventFormatter: Sendable {
    public let source: String
    public let sampleRate: Int
    /// How many of the best labels to list under `scores`.
    public let topCount: Int

    public init(source: String, sampleRate: Int, topCount: Int = 3) {
        self.source = source
        self.sampleRate = sampleRate
        self.topCount = topCount
    }

    /// `time` is the wall-clock moment of the decision, RFC 3339 in UTC with milliseconds.
    public func line(_ event: DetectionEvent, time: Date = Date()) -> String {
        JSONLine.object(
            Self.fields(event, scores: topCount) + [
                ("time", .string(Self.timestamp(time))),
                ("source", .string(source)),
                ("sample_rate", .integer(sampleRate)),
            ]
        ).text
    }

    /// A detection inside a file's `classify` line: no wall-clock time, source or rate.
    public func detection(_ event: DetectionEvent) -> String {
        JSONLine.object(Self.fields(event, scores: topCount)).text
    }

    private static func fields(_ event: DetectionEvent, scores top: Int) -> [(String, JSONLine)] {
        [
            ("type", .string("detection")),
            ("label", .string(event.label)),
            ("score", .number(Double(event.score))),
            ("start", .fixed(event.start)),
            ("end", .fixed(event.end)),
            ("latency", .fixed(event.decidedAt - event.end)),
            ("scores", .object(event.scores.prefix(top).map { ($0.label, .number(Double($0.probability))) })),
        ]
    }

    public static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// What `listen` writes on standard output for each event (the event socket always gets JSON).
public enum EventOutput: String, CaseIterable, Sendable {
    /// One JSON object a line, every field.
    case json
    /// The command's name alone, a line each: the contract of a Wyoming satellite's external wake
    /// program (raw PCM in on standard input, one detected name per line out).
    case names
}
