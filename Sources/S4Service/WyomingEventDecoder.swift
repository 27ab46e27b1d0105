import Foundation

/// Splits the bytes a client sends into Wyoming events, however they are cut into reads. Every
/// length is checked against `WyomingLimits` when the header arrives: a header that declares
/// 100 MB of payload is refused at once, without waiting for the bytes; below the limit, memory
/// grows only with the bytes that actually arrive.
public struct WyomingEventDecoder {
    public let limits: WyomingLimits

    private enum State {
        /// Collecting the header line.
        case header
        /// Collecting `dataLength` bytes of extra data, then `payloadLength` bytes of payload.
        case body(WyomingEvent, dataLength: Int, payloadLength: Int)
    }
    private var state = State.header
    private var line: [UInt8] = []
    private var extra: [UInt8] = []
    private var payload: [UInt8] = []

    public init(limits: WyomingLimits = WyomingLimits()) { self.limits = limits }

    /// Whether part of an event has arrived and the rest has not.
    public var isMidEvent: Bool {
        if case .body = state { return true }
        return !line.isEmpty
    }

    /// Takes the next bytes; returns the events they complete, in order.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(WyomingProtocolError) -> [WyomingEvent] {
        var events: [WyomingEvent] = []
        var index = 0
        while index < bytes.count {
            switch state {
            case .header:
                let rest = UnsafeRawBufferPointer(rebasing: bytes[index...])
                let newline = rest.firstIndex(of: UInt8(ascii: "\n"))
                let take = newline.map { $0 - rest.startIndex } ?? rest.count
                guard line.count + take <= limits.headerBytes else {
                    throw .tooLarge(part: "header line", length: line.count + take, limit: limits.headerBytes)
                }
                line += rest.prefix(take)
                index += take
                guard newline != nil else { break }
                index += 1
                let header = line
                line = []
                // Blank lines between events carry nothing.
                if header.allSatisfy({ $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: " ") }) { continue }
                let (event, dataLength, payloadLength) = try parseHeader(header)
                if dataLength == 0 && payloadLength == 0 {
                    events.append(event)
                } else {
                    // Nothing is reserved for the declared lengths: the buffers grow as bytes arrive.
                    state = .body(event, dataLength: dataLength, payloadLength: payloadLength)
                }
            case .body(var event, let dataLength, let payloadLength):
                let needData = dataLength - extra.count
                let available = bytes.count - index
                if needData > 0 {
                    let take = min(needData, available)
                    extra += UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)])
                    index += take
                } else {
                    let take = min(payloadLength - payload.count, available)
                    payload += UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)])
                    index += take
                }
                guard extra.count == dataLength, payload.count == payloadLength else { break }
                if dataLength > 0 {
                    guard let fields = (try? JSONSerialization.jsonObject(with: Data(extra))) as? [String: Any] else {
                        throw .malformedHeader("the \(dataLength) bytes of data are not a JSON object")
                    }
                    event.data.merge(fields) { $1 }
                }
                event.payload = payload
                events.append(event)
                extra = []
                payload = []
                state = .header
            }
        }
        return events
    }

    public mutating func feed(_ bytes: [UInt8]) throws(WyomingProtocolError) -> [WyomingEvent] {
        var result: Result<[WyomingEvent], WyomingProtocolError> = .success([])
        bytes.withUnsafeBytes { buffer in result = Result { () throws(WyomingProtocolError) in try feed(buffer) } }
        return try result.get()
    }

    /// The event a header line starts, and the lengths of its data and payload.
    private func parseHeader(_ bytes: [UInt8]) throws(WyomingProtocolError) -> (WyomingEvent, Int, Int) {
        guard let header = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
            throw .malformedHeader("not a JSON object: \(Self.excerpt(bytes))")
        }
        guard let type = header["type"] as? String, !type.isEmpty else {
            throw .malformedHeader("no \"type\": \(Self.excerpt(bytes))")
        }
        var data: [String: Any] = [:]
        if let inline = header["data"], !(inline is NSNull) {
            guard let fields = inline as? [String: Any] else { throw .malformedHeader("\"data\" is not an object") }
            data = fields
        }
        let dataLength = try Self.length(header, "data_length", limit: limits.dataBytes, part: "data")
        let payloadLength = try Self.length(header, "payload_length", limit: limits.payloadBytes, part: "payload")
        return (WyomingEvent(type: type, data: data), dataLength, payloadLength)
    }

    private static func length(_ header: [String: Any], _ key: String, limit: Int, part: String) throws(WyomingProtocolError)
        -> Int
    {
        guard let value = header[key], !(value is NSNull) else { return 0 }
        guard let length = WyomingEvent.integer(value), length >= 0 else {
            throw .malformedHeader("\"\(key)\" is not a byte count")
        }
        guard length <= limit else { throw .tooLarge(part: part, length: length, limit: limit) }
        return length
    }

    /// The start of a bad header for a log line, control bytes escaped.
    static func excerpt(_ bytes: [UInt8]) -> String {
        let text = bytes.prefix(80).map {
            (0x20..<0x7F).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String(format: "%02X", $0)
        }.joined()
        return bytes.count > 80 ? text + "…" : text
    }
}
