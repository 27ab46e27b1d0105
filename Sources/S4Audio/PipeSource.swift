import S4Core

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Audio arriving on standard input or any file descriptor (pipe, FIFO, socket, file), decoded as it
/// arrives: a read returns the frames that are there instead of waiting for a full block or EOF.
///
/// The stream is WAV (the header gives rate, channels and encoding; 8/16/24/32-bit integer or
/// 32/64-bit float) or headerless `s16le`/`f32le` with a rate and channel count given by the caller.
/// Channels are averaged to mono. Memory is one fixed block, whatever the stream's length. EOF, a
/// closed pipe or a reset connection end the stream cleanly (`read` returns 0); a partial frame at
/// the very end is dropped.
public final class PipeSource: AudioSource {
    /// Frames decoded per read at most; bounds the byte buffer.
    public static let blockFrames = 4096

    /// The name used in errors, e.g. `stdin`.
    public let description: String
    public let sampleRate: Int
    /// Channels in the stream, before the down-mix.
    public let channelCount: Int
    /// The format in effect: the one given, or the one detected.
    public let format: StreamFormat

    private let input: DescriptorInput
    private let encoding: SampleEncoding
    private let frameBytes: Int
    private let closesDescriptor: Bool
    /// Raw bytes read but not yet decoded: a partial frame carried between reads, so that pieces
    /// ending mid-sample (pipes deliver whatever the writer wrote) decode correctly.
    private let pending: UnsafeMutableRawBufferPointer
    private var pendingCount = 0
    /// Sample bytes still promised by a WAV header; nil when the stream runs to EOF.
    private var bytesLeft: Int?
    private var ended = false

    /// Opens a stream on `fileDescriptor`.
    ///
    /// - Parameters:
    ///   - format: `nil` detects: WAV when the stream starts with `RIFF`/`RF64`, otherwise `s16le`.
    ///     For WAV the header wins over `sampleRate` and `channels`.
    ///   - sampleRate: required for raw input; must lie in `supportedSampleRates`.
    ///   - closesDescriptor: close `fileDescriptor` when this source goes away (not for stdin).
    /// - Note: for WAV (given or detected) this blocks until the header has arrived.
    public init(
        fileDescriptor: Int32 = STDIN_FILENO, name: String = "stdin", format: StreamFormat? = nil,
        sampleRate: Int? = nil, channels: Int = 1, closesDescriptor: Bool = false
    ) throws(AudioSourceError) {
        description = name
        self.closesDescriptor = closesDescriptor
        // A descriptor handed over to be closed is closed on refusal too (found by `make fuzz`).
        var opened = false
        defer { if !opened && closesDescriptor { close(fileDescriptor) } }
        input = try DescriptorInput(fd: fileDescriptor, source: name)

        var resolved = format
        var magic: [UInt8] = []
        if format == nil || format == .wav {
            magic = try input.readBytes(4)
            if format == nil {
                resolved = StreamingWAVHeader.isWAVMagic(magic) ? .wav : .s16le
            }
        }
        self.format = resolved ?? .s16le

        switch self.format {
        case .wav:
            let header = try StreamingWAVHeader.read(from: input, magic: magic)
            self.sampleRate = header.sampleRate
            channelCount = header.channels
            encoding = header.encoding
            bytesLeft = header.dataBytes
            magic = []
        case .s16le, .f32le:
            guard let sampleRate else {
                // Detection met an empty stream: say so rather than ask for a rate.
                if format == nil && magic.isEmpty { throw .noAudio(source: name) }
                if format == nil {
                    let start = magic.map {
                        String($0, radix: 16).count < 2 ? "0" + String($0, radix: 16) : String($0, radix: 16)
                    }
                    throw .cannotOpen(
                        source: name,
                        reason: "not a WAV stream (it starts with bytes \(start.joined(separator: " "))), "
                            + "and raw s16le input needs a sampling rate (--rate)")
                }
                throw .cannotOpen(source: name, reason: "raw \(self.format.rawValue) input needs a sampling rate")
            }
            guard supportedSampleRates.contains(sampleRate) else {
                throw .unsupportedRate(source: name, rate: sampleRate)
            }
            guard (1...StreamingWAVHeader.maxChannels).contains(channels) else {
                throw .cannotOpen(source: name, reason: "\(channels) channels (1…\(StreamingWAVHeader.maxChannels) supported)")
            }
            self.sampleRate = sampleRate
            channelCount = channels
            encoding = self.format == .s16le ? .signed16 : .float32
        }
        frameBytes = channelCount * encoding.bytesPerSample
        pending = .allocate(byteCount: Self.blockFrames * frameBytes, alignment: 16)
        // Bytes consumed while detecting the format are the first samples of a raw stream.
        pending.copyBytes(from: magic)
        pendingCount = magic.count
        opened = true
    }

    deinit {
        pending.deallocate()
        if closesDescriptor { close(input.fd) }
    }

    public func read(into output: UnsafeMutableBufferPointer<Float>) throws(AudioSourceError) -> Int {
        let maxFrames = Swift.min(output.count, Self.blockFrames)
        guard maxFrames > 0, let base = pending.baseAddress, let out = output.baseAddress else { return 0 }
        while pendingCount < frameBytes {
            if ended || bytesLeft == 0 {
                pendingCount = 0  // a trailing partial frame is not audio
                return 0
            }
            var room = maxFrames * frameBytes - pendingCount
            if let bytesLeft { room = Swift.min(room, bytesLeft) }
            let n = try input.readSome(into: UnsafeMutableRawBufferPointer(start: base + pendingCount, count: room))
            if n == 0 { ended = true }
            pendingCount += n
            if let left = bytesLeft { bytesLeft = left - n }
        }
        let frames = Swift.min(pendingCount / frameBytes, maxFrames)
        encoding.decodeMono(base, frames: frames, channels: channelCount, into: out)
        let used = frames * frameBytes
        pendingCount -= used
        if pendingCount > 0 { memmove(base, base + used, pendingCount) }
        return frames
    }
}
