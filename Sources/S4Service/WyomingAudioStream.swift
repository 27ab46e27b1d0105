import Foundation
import S4Audio
import S4Core
import S4Detection

/// One audio stream of a Wyoming client, `audio-start` to `audio-stop`: PCM at the rate, width and
/// channel count the client declared, down-mixed and heard by a detector of its own at that rate
/// (Δ rescaled to it; the audio is never resampled).
final class WyomingAudioStream {
    let rate: Int
    let pcm: InterleavedPCM
    /// The client's timestamp of the stream's first sample (ms), 0 when it gave none.
    let startTimestamp: Int
    let detector: KeywordDetector
    /// Wake words the client asked for (`detect`); empty: every command.
    let names: Set<String>
    /// Whether a detection has been sent for this stream.
    var hasDetections = false
    /// Frames decoded so far.
    private(set) var frames = 0
    /// The bytes of a frame split across two chunks.
    private var partial: [UInt8] = []
    private var block = [Float](repeating: 0, count: 4096)

    /// A stream in the format `event` (`audio-start` or a first `audio-chunk`) declares.
    init(_ event: WyomingEvent, names: Set<String>, model: S4Model, configuration: DetectorConfiguration)
        throws(WyomingProtocolError)
    {
        (rate, pcm) = try Self.format(of: event)
        startTimestamp = try Self.timestamp(of: event)
        self.names = names
        detector = KeywordDetector(model: model, sampleRate: Double(rate), configuration: configuration)
    }

    /// The rate and sample layout an audio event declares, refused outside what the detector takes.
    static func format(of event: WyomingEvent) throws(WyomingProtocolError) -> (rate: Int, pcm: InterleavedPCM) {
        guard let rate = event.integer("rate"), let width = event.integer("width"), let channels = event.integer("channels")
        else {
            throw .badEvent("\(event.type) needs integer \"rate\", \"width\" and \"channels\"")
        }
        guard supportedSampleRates.contains(rate) else {
            throw .unsupportedAudio(AudioSourceError.unsupportedRate(source: event.type, rate: rate).description)
        }
        guard let pcm = InterleavedPCM(width: width, channels: channels) else {
            let widths = InterleavedPCM.supportedWidths.map(String.init).joined(separator: " or ")
            let range = InterleavedPCM.supportedChannels
            throw .unsupportedAudio(
                "\(event.type): width \(width) with \(channels) channels is not supported "
                    + "(width \(widths) bytes of signed integer; \(range.lowerBound)…\(range.upperBound) channels)")
        }
        return (rate, pcm)
    }

    /// The event's `timestamp` (ms), 0 when it has none; refused outside `WyomingLimits.timestamps`,
    /// so that the audio time added to it can never overflow.
    static func timestamp(of event: WyomingEvent) throws(WyomingProtocolError) -> Int {
        guard let value = event.data["timestamp"], !(value is NSNull) else { return 0 }
        let range = WyomingLimits.timestamps
        guard let timestamp = WyomingEvent.integer(value), range.contains(timestamp) else {
            throw .badEvent(
                "\(event.type): \"timestamp\" must be a whole number of milliseconds from \(range.lowerBound) to "
                    + "\(range.upperBound), not \(value)")
        }
        return timestamp
    }

    /// Whether a chunk is in this stream's format.
    func matches(_ event: WyomingEvent) -> Bool {
        guard let (rate, pcm) = try? Self.format(of: event) else { return false }
        return rate == self.rate && pcm == self.pcm
    }

    /// Decodes a chunk's payload and feeds it to the detector; the events it decided.
    func process(_ payload: [UInt8]) -> [DetectionEvent] {
        let frameBytes = pcm.frameBytes
        var events: [DetectionEvent] = []
        payload.withUnsafeBytes { raw in
            var offset = 0
            if !partial.isEmpty {
                offset = min(frameBytes - partial.count, raw.count)
                partial += raw[0..<offset]
                if partial.count == frameBytes {
                    events += partial.withUnsafeBytes { feed($0.baseAddress!, frames: 1) }
                    partial = []
                }
            }
            while raw.count - offset >= frameBytes {
                let count = min(block.count, (raw.count - offset) / frameBytes)
                events += feed(raw.baseAddress! + offset, frames: count)
                offset += count * frameBytes
            }
            partial += raw[offset...]
        }
        return events
    }

    private func feed(_ raw: UnsafeRawPointer, frames count: Int) -> [DetectionEvent] {
        block.withUnsafeMutableBufferPointer { pcm.decodeMono(raw, frames: count, into: $0.baseAddress!) }
        frames += count
        return block.withUnsafeBufferPointer { detector.process(UnsafeBufferPointer(rebasing: $0[0..<count])) }
    }

    /// The end of the stream: the utterance in progress is decided.
    func finish() -> [DetectionEvent] { detector.finish() }

    /// A detection's `timestamp`: the moment of audio it was decided at, in ms of the client's
    /// clock (the stream's start timestamp plus audio time; never past the audio received).
    func timestamp(of event: DetectionEvent) -> Int {
        startTimestamp + Int((min(event.decidedAt, Double(frames) / Double(rate)) * 1000).rounded())
    }

    /// Whether the client wants to hear about this label.
    func wants(_ label: String) -> Bool { names.isEmpty || names.contains(label) }
}
