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
