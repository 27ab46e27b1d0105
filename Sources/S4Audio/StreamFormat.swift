/// How the bytes on a pipe encode audio.
public enum StreamFormat: String, CaseIterable, Sendable {
    /// RIFF/WAVE with a header that gives rate, channels and encoding (a streamed header's wrong
    /// length is tolerated).
    case wav
    /// Headerless interleaved signed 16-bit little-endian; rate and channels must be given.
    case s16le
    /// Headerless interleaved 32-bit IEEE float little-endian; rate and channels must be given.
    case f32le
}
