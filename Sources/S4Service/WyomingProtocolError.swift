import Foundation

/// Why a client's stream of events was refused, or (`unknownWakeWords`) why a request of its
/// cannot succeed. `code` goes into the `error` event sent to it.
public enum WyomingProtocolError: Error, CustomStringConvertible, Equatable {
    case malformedHeader(String)
    case tooLarge(part: String, length: Int, limit: Int)
    case truncated
    /// An event not complete `seconds` after its first byte.
    case eventTimeout(seconds: Double)
    /// No event completed for `seconds`.
    case idle(seconds: Double)
    /// Closed, idle for `seconds`, to make room for a new client while every place was taken.
    case displaced(seconds: Double)
    case readFailed(String)
    /// The client stopped taking what it is sent (the system's error number): nothing more can be
    /// told to it.
    case writeFailed(errno: Int32)
    case badEvent(String)
    case unsupportedAudio(String)
    case tooManyClients(Int)
    /// `detect` named only words the model does not have (sorted), and those it has: the client is
    /// told at once and stays connected (a stream would only end in `not-detected`).
    case unknownWakeWords([String], known: [String])

    public var code: String {
        switch self {
        case .malformedHeader: "malformed-header"
        case .tooLarge: "too-large"
        case .truncated: "truncated"
        case .eventTimeout: "event-timeout"
        case .idle: "idle-timeout"
        case .displaced: "displaced"
        case .readFailed: "read-failed"
        case .writeFailed: "write-failed"
        case .badEvent: "bad-event"
        case .unsupportedAudio: "unsupported-audio"
        case .tooManyClients: "too-many-clients"
        case .unknownWakeWords: "unknown-wake-word"
        }
    }

    public var description: String {
        switch self {
        case .malformedHeader(let reason): "malformed event header: \(reason)"
        case .tooLarge(let part, let length, let limit): "\(part) of \(length) bytes is over the limit of \(limit) bytes"
        case .truncated: "connection closed in the middle of an event"
        case .eventTimeout(let seconds): "an event was not complete \(seconds) s after its first byte"
        case .idle(let seconds): "no event for \(seconds) s"
        case .displaced(let seconds):
            "closed after \(String(format: "%.1f", seconds)) s without an event to make room for a new client (all places taken)"
        case .readFailed(let reason): "read failed: \(reason)"
        case .writeFailed(let code): "write failed: \(String(cString: strerror(code)))"
        case .badEvent(let reason): reason
        case .unsupportedAudio(let reason): reason
        case .tooManyClients(let limit): "too many clients (at most \(limit) at once); try again later"
        case .unknownWakeWords(let names, let known):
            "detect names no wake word of this model (\(names.joined(separator: ", "))); its wake words: "
                + known.joined(separator: ", ")
        }
    }

    /// The `error` event that tells the client.
    public var event: WyomingEvent { WyomingEvent(type: "error", data: ["text": description, "code": code]) }
}
