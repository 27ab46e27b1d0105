/// Interleaved little-endian signed-integer PCM as a network protocol carries it in memory (the
/// Wyoming protocol's audio chunks: `width` bytes a sample, `channels` samples a frame), decoded to
/// mono Float at the stream's own rate with the same conversion as pipes and WAV files.
public struct InterleavedPCM: Sendable, Equatable {
    /// Sample widths in bytes: 16- and 32-bit signed integers.
    public static let supportedWidths = [2, 4]
    /// Channel counts accepted (down-mixed); more is taken for a corrupt header, as for WAV.
    public static let supportedChannels = 1...StreamingWAVHeader.maxChannels

    public let width: Int
    public let channels: Int
    private let encoding: SampleEncoding

    /// Nil for a width or channel count outside the supported ones.
    public init?(width: Int, channels: Int) {
        guard Self.supportedChannels.contains(channels) else { return nil }
        switch width {
        case 2: encoding = .signed16
        case 4: encoding = .signed32
        default: return nil
        }
        self.width = width
        self.channels = channels
    }

    /// Bytes of one frame (one sample of every channel).
    public var frameBytes: Int { width * channels }

    /// Decodes the `frames` whole frames at `raw` to their channel average in `output`
    /// (integers scaled by 2^(bits−1): 16-bit input gives exactly `Int16 / 32768`).
    public func decodeMono(_ raw: UnsafeRawPointer, frames: Int, into output: UnsafeMutablePointer<Float>) {
        encoding.decodeMono(raw, frames: frames, channels: channels, into: output)
    }
}
