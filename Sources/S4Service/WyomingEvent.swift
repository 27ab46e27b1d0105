import Foundation

/// One event of the Wyoming protocol (rhasspy/wyoming), the way Home Assistant and voice
/// satellites talk to local speech services: a JSON header line with `type` and the lengths of
/// what follows (`data_length`, `payload_length`), then that much extra JSON data (merged into
/// the header's `data`) and that many bytes of binary payload (audio).
public struct WyomingEvent: @unchecked Sendable {
    public var type: String
    /// The event's fields (JSON values as `JSONSerialization` gives them).
    public var data: [String: Any]
    public var payload: [UInt8]

    public init(type: String, data: [String: Any] = [:], payload: [UInt8] = []) {
        self.type = type
        self.data = data
        self.payload = payload
    }

    /// The bytes on the wire, written as the reference library writes them: the header line, the
    /// data as a separate JSON block of `data_length` bytes, then the payload.
    public func encoded() -> [UInt8] {
        var header: [String: Any] = ["type": type]
        var body: [UInt8] = []
        if !data.isEmpty {
            // Fields built by this server are always serialisable; a failure would be a bug here.
            body = [UInt8](
                (try? JSONSerialization.data(withJSONObject: data, options: [.sortedKeys, .withoutEscapingSlashes]))
                    ?? Data("{}".utf8))
            header["data_length"] = body.count
        }
        if !payload.isEmpty { header["payload_length"] = payload.count }
        let line = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data()
        return [UInt8](line) + [UInt8(ascii: "\n")] + body + payload
    }

    // Typed access to incoming fields: nil when absent or of another type.

    public func integer(_ key: String) -> Int? { Self.integer(data[key]) }
    public func string(_ key: String) -> String? { data[key] as? String }

    /// An integral JSON number that fits an Int (not `true`, not 1.5, not 1e30). JSON booleans
    /// arrive as NSNumber too, of type "c" (char).
    static func integer(_ value: Any?) -> Int? {
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
        return value as? Int
    }
}

/// Bounds on what one client may send, checked before anything is allocated for it.
public struct WyomingLimits: Sendable {
    /// The JSON header line.
    public var headerBytes = 64 * 1024
    /// The extra JSON data block.
    public var dataBytes = 1 << 20
    /// One event's binary payload: 4 MiB is 20 s of 48 kHz 16-bit stereo, while clients send
    /// chunks of tens of milliseconds.
    public var payloadBytes = 4 << 20
    /// A client that stops in the middle of an event for this long is disconnected (seconds).
    public var stallSeconds: Double = 30

    public init() {}
}

/// Why a client's stream of events was refused. `code` goes into the `error` event sent to it.
public enum WyomingProtocolError: Error, CustomStringConvertible, Equatable {
    case malformedHeader(String)
    case tooLarge(part: String, length: Int, limit: Int)
    case truncated
    case stalled(seconds: Double)
    case readFailed(String)
    /// The client stopped taking what it is sent: nothing more can be told to it.
    case writeFailed(String)
    case badEvent(String)
    case unsupportedAudio(String)
    case tooManyClients(Int)

    public var code: String {
        switch self {
        case .malformedHeader: "malformed-header"
        case .tooLarge: "too-large"
        case .truncated: "truncated"
        case .stalled: "stalled"
        case .readFailed: "read-failed"
        case .writeFailed: "write-failed"
        case .badEvent: "bad-event"
        case .unsupportedAudio: "unsupported-audio"
        case .tooManyClients: "too-many-clients"
        }
    }

    public var description: String {
        switch self {
        case .malformedHeader(let reason): "malformed event header: \(reason)"
        case .tooLarge(let part, let length, let limit): "\(part) of \(length) bytes is over the limit of \(limit) bytes"
        case .truncated: "connection closed in the middle of an event"
        case .stalled(let seconds): "no bytes for \(seconds) s in the middle of an event"
        case .readFailed(let reason): "read failed: \(reason)"
        case .writeFailed(let reason): "write failed: \(reason)"
        case .badEvent(let reason): reason
        case .unsupportedAudio(let reason): reason
        case .tooManyClients(let limit): "too many clients (at most \(limit) at once); try again later"
        }
    }

    /// The `error` event that tells the client.
    public var event: WyomingEvent { WyomingEvent(type: "error", data: ["text": description, "code": code]) }
}
