import Foundation
import Testing

@testable import S4Service

/// The Wyoming framing: a header line, extra JSON data and a binary payload, split anywhere
/// across reads; limits checked from the header before anything is allocated.
@Suite struct WyomingEventDecoderTests {
    static func header(_ fields: [String: Any]) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) + [UInt8(ascii: "\n")]
    }

    /// What the reference library writes for an audio chunk: data in its own block, then the PCM.
    static let chunk: [UInt8] = {
        let data = Array(#"{"rate": 48000, "width": 4, "channels": 2, "timestamp": 20}"#.utf8)
        let payload = (0..<960).map { UInt8(truncatingIfNeeded: $0 * 7) }
        return header(["type": "audio-chunk", "data_length": data.count, "payload_length": payload.count, "version": "1.5.2"])
            + data + payload
    }()

    @Test func eventsSplitAtAnyByteDecodeTheSame() throws {
        let stream = Self.header(["type": "describe"]) + Self.chunk + Self.header(["type": "detect", "data": ["names": ["yes"]]])
        for cut in [1, 2, 7, 64, 1000, stream.count] {
            var decoder = WyomingEventDecoder()
            var events: [WyomingEvent] = []
            var offset = 0
            while offset < stream.count {
                let end = min(stream.count, offset + cut)
                events += try decoder.feed(Array(stream[offset..<end]))
                offset = end
            }
            #expect(!decoder.isMidEvent)
            #expect(events.map(\.type) == ["describe", "audio-chunk", "detect"], "pieces of \(cut)")
            #expect(events[1].integer("rate") == 48000 && events[1].integer("width") == 4 && events[1].integer("channels") == 2)
            #expect(events[1].integer("timestamp") == 20)
            #expect(events[1].payload == Array(Self.chunk.suffix(960)))
            #expect(events[2].data["names"] as? [String] == ["yes"])
        }
    }

    @Test func extraDataIsMergedOverTheHeadersData() throws {
        let extra = Array(#"{"rate": 16000}"#.utf8)
        var decoder = WyomingEventDecoder()
        let events = try decoder.feed(
            Self.header(["type": "audio-start", "data": ["rate": 8000, "width": 2], "data_length": extra.count]) + extra)
        #expect(events.count == 1)
        #expect(events[0].integer("rate") == 16000 && events[0].integer("width") == 2)
    }

    @Test func encodedEventsDecodeToThemselves() throws {
        let event = WyomingEvent(type: "audio-chunk", data: ["rate": 44100, "width": 2, "channels": 1], payload: [1, 2, 3, 4])
        var decoder = WyomingEventDecoder()
        let decoded = try decoder.feed(event.encoded() + WyomingEvent(type: "not-detected").encoded())
        #expect(decoded.map(\.type) == ["audio-chunk", "not-detected"])
        #expect(decoded[0].integer("rate") == 44100 && decoded[0].payload == [1, 2, 3, 4])
        #expect(decoded[1].data.isEmpty && decoded[1].payload.isEmpty)
    }

    @Test func aHundredMegabytePayloadIsRefusedFromTheHeaderAlone() {
        var decoder = WyomingEventDecoder()
        #expect(throws: WyomingProtocolError.tooLarge(part: "payload", length: 100_000_000, limit: WyomingLimits().payloadBytes))
        {
            try decoder.feed(Self.header(["type": "audio-chunk", "payload_length": 100_000_000]))
        }
        var data = WyomingEventDecoder()
        #expect(throws: WyomingProtocolError.tooLarge(part: "data", length: 2 << 20, limit: WyomingLimits().dataBytes)) {
            try data.feed(Self.header(["type": "audio-chunk", "data_length": 2 << 20]))
        }
    }

    @Test func aHeaderLineWithoutEndIsRefusedAtTheLimit() {
        var limits = WyomingLimits()
        limits.headerBytes = 1000
        var decoder = WyomingEventDecoder(limits: limits)
        #expect(throws: WyomingProtocolError.self) { try decoder.feed([UInt8](repeating: UInt8(ascii: "x"), count: 1001)) }
    }

    @Test(arguments: [
        #"not json"#, #"[1, 2]"#, #"{"data": {}}"#, #"{"type": ""}"#, #"{"type": "x", "payload_length": -1}"#,
        #"{"type": "x", "payload_length": 1.5}"#, #"{"type": "x", "payload_length": true}"#,
        #"{"type": "x", "payload_length": "10"}"#,
        #"{"type": "x", "data": [1]}"#, #"{"type": "x", "payload_length": 1e30}"#,
    ])
    func malformedHeadersAreRefused(line: String) {
        var decoder = WyomingEventDecoder()
        #expect(throws: WyomingProtocolError.self) { try decoder.feed(Array((line + "\n").utf8)) }
    }

    @Test func extraDataThatIsNotAnObjectIsRefused() {
        var decoder = WyomingEventDecoder()
        #expect(throws: WyomingProtocolError.self) {
            try decoder.feed(Self.header(["type": "x", "data_length": 3]) + Array("[1]".utf8))
        }
    }

    @Test func anEventCutShortIsMidEvent() throws {
        var decoder = WyomingEventDecoder()
        #expect(try decoder.feed(Array(Self.chunk.prefix(100))).isEmpty)
        #expect(decoder.isMidEvent)
    }

    @Test func uris() throws {
        #expect(try WyomingEndpoint(uri: "tcp://127.0.0.1:10400") == .tcp(host: "127.0.0.1", port: 10400))
        #expect(try WyomingEndpoint(uri: "tcp://[::1]:10400") == .tcp(host: "::1", port: 10400))
        #expect(try WyomingEndpoint(uri: "unix:///run/s4listen/wyoming.sock") == .unix(path: "/run/s4listen/wyoming.sock"))
        #expect(try WyomingEndpoint(uri: "stdio://") == .stdio)
        for bad in ["tcp://127.0.0.1", "tcp://:10400", "tcp://host:0", "tcp://host:70000", "udp://host:1", "unix://", "10400"] {
            #expect(throws: ServiceError.self, "\(bad)") { try WyomingEndpoint(uri: bad) }
        }
    }
}
