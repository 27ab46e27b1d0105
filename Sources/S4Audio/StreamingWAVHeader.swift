import S4Core

/// The header of a WAV stream, read chunk by chunk from a pipe up to the start of the samples.
///
/// Parsed here rather than by libsndfile because libsndfile on a pipe (1) cannot be told the four
/// bytes already consumed to recognise the format, (2) fills every read request completely before
/// returning, which adds a block of latency to a live stream, and (3) stops at the header's data
/// length, which sox and arecord set to about 2 GB when streaming: 18 hours of 16 kHz mono.
struct StreamingWAVHeader: Equatable {
    var sampleRate: Int
    var channels: Int
    var encoding: SampleEncoding
    /// Bytes of sample data the header promises; nil when it is a streaming placeholder (0, or 2 GB
    /// and more), in which case the samples run to EOF.
    var dataBytes: Int?

    /// Largest channel count accepted; more is taken for a corrupt header.
    static let maxChannels = 64
    /// Data lengths from here on are placeholders written by streaming encoders (sox: 0x7FFFF000,
    /// arecord: 0x7FFFFFFF, RF64 and ffmpeg: 0xFFFFFFFF).
    static let streamingLength = 0x7FFF_0000

    /// Whether the first four bytes of a stream start a WAV header: RIFF, RF64 for large files, or
    /// RIFX (big-endian), taken as WAV so that the header parser refuses it by name rather than
    /// the bytes being played as raw s16le.
    static func isWAVMagic(_ bytes: some Collection<UInt8>) -> Bool {
        let magic = String(decoding: bytes.prefix(4), as: UTF8.self)
        return magic == "RIFF" || magic == "RF64" || magic == "RIFX"
    }

    /// Reads the rest of the header after `magic`, leaving `input` at the first sample byte.
    static func read(from input: DescriptorInput, magic: [UInt8]) throws(AudioSourceError) -> StreamingWAVHeader {
        let source = input.source
        func fail(_ reason: String) -> AudioSourceError { .cannotOpen(source: source, reason: reason) }
        if magic.isEmpty { throw .noAudio(source: source) }
        let tag = String(decoding: magic, as: UTF8.self)
        if tag == "RIFX" { throw fail("big-endian WAV (RIFX) is not supported") }
        guard magic.count == 4, tag == "RIFF" || tag == "RF64" else {
            throw fail("not a WAV stream (it does not start with RIFF)")
        }
        let form = try input.readBytes(8)
        guard form.count == 8 else { throw fail("WAV header ends after \(4 + form.count) bytes") }
        guard String(decoding: form[4..<8], as: UTF8.self) == "WAVE" else {
            throw fail("not a WAV stream (RIFF without WAVE)")
        }
        var format: (rate: Int, channels: Int, encoding: SampleEncoding)?
        while true {
            let chunk = try input.readBytes(8)
            guard chunk.count == 8 else { throw fail("WAV header ends before the data chunk") }
            let id = printable(chunk[0..<4])
            let size = Int(littleEndianUInt32(chunk, at: 4))
            switch id {
            case "fmt ":
                guard (16...1024).contains(size) else { throw fail("WAV fmt chunk of \(size) bytes is malformed") }
                let body = try input.readBytes(size + size % 2)
                guard body.count == size + size % 2 else { throw fail("WAV header ends inside the fmt chunk") }
                format = try parseFormat(body, fail: fail)
            case "data":
                guard let format else { throw fail("WAV data chunk comes before the fmt chunk") }
                guard supportedSampleRates.contains(format.rate) else {
                    throw .unsupportedRate(source: source, rate: format.rate)
                }
                let length = size > 0 && size < streamingLength ? size : nil
                return StreamingWAVHeader(
                    sampleRate: format.rate, channels: format.channels, encoding: format.encoding, dataBytes: length)
            default:
                // LIST, fact, ds64, PEAK, …: not needed for streaming, read past them.
                guard try input.skip(size + size % 2) else { throw fail("WAV header ends inside the \(id) chunk") }
            }
        }
    }

    /// The fmt chunk: integer PCM of 8/16/24/32 bits or IEEE float of 32/64 bits, plain or extensible.
    private static func parseFormat(
        _ body: [UInt8], fail: (String) -> AudioSourceError
    ) throws(AudioSourceError) -> (rate: Int, channels: Int, encoding: SampleEncoding) {
        var tag = Int(littleEndianUInt16(body, at: 0))
        let channels = Int(littleEndianUInt16(body, at: 2))
        let rate = Int(littleEndianUInt32(body, at: 4))
        let bits = Int(littleEndianUInt16(body, at: 14))
        if tag == 0xFFFE, body.count >= 26 {
            tag = Int(littleEndianUInt16(body, at: 24))  // WAVE_FORMAT_EXTENSIBLE: first two bytes of the sub-format GUID
        }
        let encoding: SampleEncoding? =
            switch (tag, bits) {
            case (1, 8): .unsigned8
            case (1, 16): .signed16
            case (1, 24): .signed24
            case (1, 32): .signed32
            case (3, 32): .float32
            case (3, 64): .float64
            default: nil
            }
        guard let encoding else {
            throw fail("WAV encoding \(tag) with \(bits) bits is not supported (integer PCM or float only)")
        }
        guard (1...maxChannels).contains(channels) else { throw fail("WAV header gives \(channels) channels") }
        return (rate, channels, encoding)
    }

    /// A chunk id as text for a message: printable ASCII as is, other bytes as \xNN, so a damaged
    /// header cannot put a newline or control characters into a log line.
    static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map {
            (0x20..<0x7F).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16, uppercase: true).leftPadded()
        }
        .joined()
    }

    private static func littleEndianUInt16(_ bytes: [UInt8], at offset: Int) -> UInt16 {
        UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    private static func littleEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(littleEndianUInt16(bytes, at: offset)) | UInt32(littleEndianUInt16(bytes, at: offset + 2)) << 16
    }
}

extension String {
    fileprivate func leftPadded() -> String { count < 2 ? "0" + self : self }
}
