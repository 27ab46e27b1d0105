import Foundation
import S4RandomModel

/// A test recording made in the test: quiet noise with loud harmonic-tone bursts at known onsets,
/// so that the energy gate finds each burst exactly where it was put, whatever the model says.
struct AudioScene {
    let sampleRate: Int
    /// Interleaved frames of `channels` samples in [−1, 1].
    let samples: [Float]
    let channels: Int
    /// Burst onsets, seconds.
    let onsets: [Double]
    let burstSeconds: Double

    var duration: Double { Double(samples.count / channels) / Double(sampleRate) }

    /// `seconds` of noise at about −50 dBFS with bursts of a 220 Hz tone and two harmonics (about
    /// −14 dBFS) lasting `burst` seconds from each onset. Onsets on 10 ms boundaries fall on the
    /// detector's frame boundaries. Stereo gets its own noise on the right channel and the bursts
    /// on the left only: the down-mix still holds them 30 dB above the noise.
    static func bursts(
        rate: Int, seconds: Double = 4.4, onsets: [Double] = [0.5, 1.8, 3.1], burst: Double = 0.4,
        channels: Int = 1, seed: UInt64 = 1
    ) -> AudioScene {
        var random = SeededGenerator(seed: seed)
        let frames = Int((seconds * Double(rate)).rounded())
        let starts = onsets.map { Int(($0 * Double(rate)).rounded()) }
        let length = Int((burst * Double(rate)).rounded())
        var samples = [Float](repeating: 0, count: frames * channels)
        for i in 0..<frames {
            var left = 0.005 * random.uniform()
            if let onset = starts.first(where: { i >= $0 && i < $0 + length }) {
                let t = Double(i - onset) / Double(rate)
                left += Float(0.15 * sin(2 * .pi * 220 * t) + 0.1 * sin(2 * .pi * 440 * t) + 0.05 * sin(2 * .pi * 660 * t))
            }
            samples[i * channels] = left
            for c in 1..<max(channels, 1) { samples[i * channels + c] = 0.005 * random.uniform() }
        }
        return AudioScene(sampleRate: rate, samples: samples, channels: channels, onsets: onsets, burstSeconds: burst)
    }

    /// Quiet noise only.
    static func noise(rate: Int, seconds: Double, seed: UInt64 = 7) -> AudioScene {
        bursts(rate: rate, seconds: seconds, onsets: [], seed: seed)
    }

    var int16: [Int16] { samples.map { Int16(max(-32768, min(32767, ($0 * 32768).rounded()))) } }

    /// Headerless interleaved signed 16-bit little-endian.
    var s16le: Data { int16.withUnsafeBytes { Data($0) } }  // x86-64 and arm64 are little-endian
    /// Headerless interleaved 32-bit float little-endian.
    var f32le: Data { samples.withUnsafeBytes { Data($0) } }

    /// A 16-bit PCM WAV file; `declaredDataBytes` overrides the data chunk's length field.
    func wav(declaredDataBytes: UInt32? = nil) -> Data {
        let data = s16le
        var header = Data()
        func put32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        func put16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        header.append(contentsOf: Array("RIFF".utf8))
        put32(UInt32(36 + data.count))
        header.append(contentsOf: Array("WAVEfmt ".utf8))
        put32(16)
        put16(1)  // integer PCM
        put16(UInt16(channels))
        put32(UInt32(sampleRate))
        put32(UInt32(sampleRate * channels * 2))
        put16(UInt16(channels * 2))
        put16(16)
        header.append(contentsOf: Array("data".utf8))
        put32(declaredDataBytes ?? UInt32(data.count))
        return header + data
    }
}
