/// How one sample is stored in an interleaved little-endian byte stream (raw pipes, WAV data, ALSA
/// buffers), and the conversion of whole frames to mono Float.
enum SampleEncoding: Equatable, Sendable {
    case unsigned8, signed16, signed24, signed32, float32, float64

    var bytesPerSample: Int {
        switch self {
        case .unsigned8: 1
        case .signed16: 2
        case .signed24: 3
        case .signed32, .float32: 4
        case .float64: 8
        }
    }

    /// Decodes `frames` interleaved frames of `channels` samples from `raw` and writes their channel
    /// average to `output`. Integers are scaled by 2^(bits−1), so 16-bit input gives exactly
    /// `Int16 / 32768`. Floats are clamped to [−1, 1] and NaN becomes 0: one NaN would otherwise
    /// poison the model's recurrent state for the rest of the stream.
    func decodeMono(_ raw: UnsafeRawPointer, frames: Int, channels: Int, into output: UnsafeMutablePointer<Float>) {
        let width = bytesPerSample
        let scale = 1 / Float(channels)
        for frame in 0..<frames {
            var sum: Float = 0
            var offset = frame * channels * width
            for _ in 0..<channels {
                sum += sample(raw, at: offset)
                offset += width
            }
            output[frame] = channels == 1 ? sum : sum * scale
        }
    }

    @inline(__always)
    private func sample(_ raw: UnsafeRawPointer, at offset: Int) -> Float {
        switch self {
        case .unsigned8:
            return (Float(raw.load(fromByteOffset: offset, as: UInt8.self)) - 128) / 128
        case .signed16:
            return Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int16.self))) / 32768
        case .signed24:
            let low = Int32(raw.load(fromByteOffset: offset, as: UInt8.self))
            let mid = Int32(raw.load(fromByteOffset: offset + 1, as: UInt8.self))
            let high = Int32(raw.load(fromByteOffset: offset + 2, as: Int8.self))
            return Float(high << 16 | mid << 8 | low) / 8_388_608
        case .signed32:
            return Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self))) / 2_147_483_648
        case .float32:
            let bits = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            return Self.clamped(Float(bitPattern: bits))
        case .float64:
            let bits = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            return Self.clamped(Float(Double(bitPattern: bits)))
        }
    }

    @inline(__always)
    static func clamped(_ x: Float) -> Float {
        x.isNaN ? 0 : Swift.min(Swift.max(x, -1), 1)
    }
}
