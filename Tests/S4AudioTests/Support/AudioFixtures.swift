import CSndFile
import Foundation
import S4Audio

/// Test signals and their encodings (WAV through libsndfile, raw little-endian bytes).
enum AudioFixtures {
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("s4audio-sources-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// A 16-bit signal with some structure (a tone plus a ramp), distinct per channel.
    static func int16Frames(count: Int, channels: Int = 1, seed: Int = 0) -> [Int16] {
        (0..<count * channels).map { index in
            let frame = index / channels, channel = index % channels
            let tone = 12000 * sin(Double(frame) * (0.05 + 0.03 * Double(channel + seed)))
            return Int16(tone) &+ Int16(truncatingIfNeeded: (frame * 7 + channel * 1000) % 4000 - 2000)
        }
    }

    static func s16le(_ samples: [Int16]) -> [UInt8] {
        samples.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }

    static func f32le(_ samples: [Float]) -> [UInt8] {
        samples.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    }

    /// The channel average of interleaved 16-bit frames, as the sources compute it.
    static func mono(_ samples: [Int16], channels: Int) -> [Float] {
        stride(from: 0, to: samples.count, by: channels).map { start in
            let sum = samples[start..<start + channels].reduce(Float(0)) { $0 + Float($1) / 32768 }
            return channels == 1 ? sum : sum * (1 / Float(channels))
        }
    }

    /// Writes interleaved float frames with libsndfile and returns the path.
    static func writeFile(_ name: String, frames: [Float], rate: Int, channels: Int, format: Int32) -> String {
        let path = directory.appendingPathComponent(name).path
        var info = SF_INFO()
        info.samplerate = Int32(rate)
        info.channels = Int32(channels)
        info.format = format
        let handle = sf_open(path, Int32(SFM_WRITE), &info)!
        _ = frames.withUnsafeBufferPointer { sf_writef_float(handle, $0.baseAddress, sf_count_t(frames.count / channels)) }
        sf_close(handle)
        return path
    }

    static func bytes(of path: String) -> [UInt8] {
        Array(FileManager.default.contents(atPath: path) ?? Data())
    }

    static func tone(count: Int, rate: Int, channels: Int = 1) -> [Float] {
        (0..<count * channels).map { index in
            let frame = index / channels, channel = index % channels
            return Float(0.6 * sin(2 * Double.pi * Double(440 + 110 * channel) * Double(frame) / Double(rate)))
        }
    }

    /// Reads a source to its end in blocks of `block` frames (an odd size on purpose).
    static func readAll(_ source: any AudioSource, block: Int = 1001, limit: Int = 10_000_000) throws -> [Float] {
        var result: [Float] = []
        var buffer = [Float](repeating: .nan, count: block)
        while result.count < limit {
            let n = try buffer.withUnsafeMutableBufferPointer { try source.read(into: $0) }
            if n == 0 { break }
            result += buffer[0..<n]
        }
        return result
    }

    /// Starts `executable`, reads its standard output through a `PipeSource` to the end, and
    /// waits for it: a real producer streaming into the pipe as it writes.
    static func readAll(
        fromProcess executable: String, _ arguments: [String],
        environment: [String: String]? = nil
    ) throws -> (source: PipeSource, samples: [Float]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let name = URL(fileURLWithPath: executable).lastPathComponent
        let source = try PipeSource(fileDescriptor: output.fileHandleForReading.fileDescriptor, name: name)
        let samples = try readAll(source)
        process.waitUntilExit()
        return (source, samples)
    }
}
