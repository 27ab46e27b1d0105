import CSndFile
import Foundation
import S4Core

/// Any file libsndfile reads (WAV, FLAC, OGG, AIFF, …), at its own rate, down-mixed to mono
/// Float in [−1, 1] block by block: memory stays constant however long the file is.
public final class SoundFileReader: AudioSource {
    public let source: String
    /// The path, as the `AudioSource` name.
    public var description: String { source }
    public let sampleRate: Int
    public let channelCount: Int
    /// Frames as the header states (unreliable for pipes).
    public let frameCount: Int
    private let handle: OpaquePointer
    private var interleaved: [Float] = []

    /// libsndfile keeps the error of a failed open in a process-wide slot: opening and reading
    /// that message happen under one lock, so concurrent opens (classify --jobs) get their own.
    private static let openLock = NSLock()

    public init(path: String) throws(AudioSourceError) {
        source = path
        try SoundFileDiagnosis.checkPath(path)
        var info = SF_INFO()
        Self.openLock.lock()
        let opened = sf_open(path, Int32(SFM_READ), &info)
        let failure = opened == nil ? String(cString: sf_strerror(nil)) : ""
        Self.openLock.unlock()
        guard let handle = opened else { throw SoundFileDiagnosis.explain(path, libsndfile: failure) }
        self.handle = handle
        sampleRate = Int(info.samplerate)
        channelCount = Int(info.channels)
        frameCount = Int(info.frames)
        guard supportedSampleRates.contains(sampleRate) else {
            sf_close(handle)
            throw .unsupportedRate(source: path, rate: sampleRate)
        }
        guard channelCount > 0 else {
            sf_close(handle)
            throw .cannotOpen(source: path, reason: "no channels")
        }
    }

    deinit { sf_close(handle) }

    /// Reads up to `output.count` frames, averaging the channels; returns how many were read (0 at
    /// the end). A decoding error is thrown rather than passed off as the end of the file.
    public func read(into output: UnsafeMutableBufferPointer<Float>) throws(AudioSourceError) -> Int {
        let frames = output.count
        if interleaved.count < frames * channelCount { interleaved = Array(repeating: 0, count: frames * channelCount) }
        let got = interleaved.withUnsafeMutableBufferPointer { sf_readf_float(handle, $0.baseAddress, sf_count_t(frames)) }
        let n = Int(max(got, 0)), c = channelCount
        if n == 0, sf_error(handle) != 0 {
            throw .readFailed(source: source, reason: String(cString: sf_strerror(handle)))
        }
        // Float files may hold NaN or values past full scale: treated as a pipe treats them.
        if c == 1 {
            for i in 0..<n { output[i] = SampleEncoding.clamped(interleaved[i]) }
        } else {
            let scale = 1 / Float(c)
            for i in 0..<n {
                var sum: Float = 0
                for k in 0..<c { sum += SampleEncoding.clamped(interleaved[i * c + k]) }
                output[i] = sum * scale
            }
        }
        return n
    }

    /// The file from the current position, down-mixed: all of it, or at most `limit` frames (the
    /// rest stays to be read).
    public func readAll(limit: Int = .max) throws(AudioSourceError) -> [Float] {
        var samples: [Float] = []
        var block = [Float](repeating: 0, count: 8192)
        while samples.count < limit {
            let wanted = min(block.count, limit - samples.count)
            let n = try block.withUnsafeMutableBufferPointer { buffer throws(AudioSourceError) in
                try read(into: UnsafeMutableBufferPointer(rebasing: buffer[0..<wanted]))
            }
            if n == 0 { break }
            samples += block[0..<n]
        }
        if sf_error(handle) != 0 {
            throw .readFailed(source: source, reason: String(cString: sf_strerror(handle)))
        }
        guard !samples.isEmpty else { throw .noAudio(source: source) }
        return samples
    }
}
