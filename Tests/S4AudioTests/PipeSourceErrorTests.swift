import CSndFile
import Foundation
import Testing

@testable import S4Audio

/// Bad input on a pipe: a clear error or a clean end, never a crash or a hang.
@Suite struct PipeSourceErrorTests {
    typealias F = AudioFixtures

    func open(_ bytes: [UInt8], format: StreamFormat? = nil, rate: Int? = nil, channels: Int = 1) throws(AudioSourceError)
        -> PipeSource
    {
        try PipeSource(
            fileDescriptor: PipeFeeder.start(bytes), name: "test-pipe", format: format, sampleRate: rate,
            channels: channels, closesDescriptor: true)
    }

    /// The message of the AudioSourceError that `body` throws.
    func reason(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch let error as AudioSourceError {
            return error.description
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func notAudioAsWAVIsRefused() {
        let text = Array("these are not samples, just a line of text\n".utf8)
        let message = reason { _ = try open(text, format: .wav) }
        #expect(message == "test-pipe: cannot read audio: not a WAV stream (it does not start with RIFF)")
        #expect(reason { _ = try open(text) }.contains("needs a sampling rate"))
        // RIFF but not WAVE (an AVI, say).
        #expect(reason { _ = try open(Array("RIFF\u{10}\0\0\0AVI LIST".utf8)) }.contains("RIFF without WAVE"))
    }

    @Test func truncatedStreams() throws {
        let wav = F.bytes(
            of: F.writeFile(
                "trunc.wav", frames: F.tone(count: 1000, rate: 16000), rate: 16000, channels: 1,
                format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)))
        #expect(reason { _ = try open(Array(wav.prefix(20))) }.contains("ends inside the fmt chunk"))
        #expect(reason { _ = try open(Array(wav.prefix(38))) }.contains("ends before the data chunk"))
        #expect(reason { _ = try open(Array(wav.prefix(2)), format: .wav) }.contains("not a WAV stream"))
        // Cut in the middle of a sample: the whole frames before it, then a clean end.
        #expect(try F.readAll(open(Array(wav.prefix(44 + 2 * 600 + 1)))).count == 600)
        let raw = try open(
            Array(F.s16le(F.int16Frames(count: 500, channels: 2)).prefix(4 * 321 + 3)), format: .s16le, rate: 8000, channels: 2)
        #expect(try F.readAll(raw).count == 321)
    }

    @Test func zeroLengthStreams() throws {
        #expect(throws: AudioSourceError.noAudio(source: "test-pipe")) { try open([], format: .wav) }
        #expect(throws: AudioSourceError.noAudio(source: "test-pipe")) { try open([]) }
        #expect(try F.readAll(open([], format: .s16le, rate: 16000)).isEmpty)
        #expect(try F.readAll(open([], rate: 16000)).isEmpty)
        // A header and no samples.
        let empty = F.bytes(
            of: F.writeFile(
                "empty-pipe.wav", frames: [], rate: 16000, channels: 1, format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)))
        #expect(try F.readAll(open(empty)).isEmpty)
    }

    @Test func absurdRatesAreRefused() {
        #expect(throws: AudioSourceError.unsupportedRate(source: "test-pipe", rate: 100)) {
            try open([1, 2, 3, 4], format: .s16le, rate: 100)
        }
        #expect(throws: AudioSourceError.unsupportedRate(source: "test-pipe", rate: 5_000_000)) {
            try open([], format: .f32le, rate: 5_000_000)
        }
        var header = F.bytes(
            of: F.writeFile(
                "slow-pipe.wav", frames: F.tone(count: 100, rate: 100), rate: 100, channels: 1,
                format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)))
        #expect(throws: AudioSourceError.unsupportedRate(source: "test-pipe", rate: 100)) { try open(header) }
        header.replaceSubrange(22..<24, with: [0, 0])  // zero channels
        #expect(reason { _ = try open(header) }.contains("0 channels"))
        #expect(reason { _ = try open([], format: .s16le, rate: 16000, channels: 0) }.contains("0 channels"))
    }

    @Test func unsupportedWAVEncodingIsNamed() {
        let adpcm = F.bytes(
            of: F.writeFile(
                "adpcm.wav", frames: F.tone(count: 2000, rate: 16000), rate: 16000, channels: 1,
                format: Int32(SF_FORMAT_WAV | SF_FORMAT_IMA_ADPCM)))
        #expect(reason { _ = try open(adpcm) }.contains("WAV encoding 17 with 4 bits is not supported"))
    }

    /// A descriptor that is not open (a number no test can have been given by pipe()).
    @Test func closedDescriptorIsRefused() {
        #expect(
            reason { _ = try PipeSource(fileDescriptor: Int32.max, name: "gone", format: .s16le, sampleRate: 16000) }
                == "gone: cannot read audio: file descriptor 2147483647: Bad file descriptor")
    }

    /// The producer closes its end mid-stream (it crashed, or was stopped): a clean end.
    @Test func writerClosingMidStreamEndsCleanly() throws {
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        let samples = F.int16Frames(count: 1234)
        _ = PipeFeeder.writeAll(fds[1], ArraySlice(F.s16le(samples) + [0x7F]))
        close(fds[1])
        let source = try PipeSource(fileDescriptor: fds[0], format: .s16le, sampleRate: 16000, closesDescriptor: true)
        #expect(try F.readAll(source) == F.mono(samples, channels: 1))
        var buffer = [Float](repeating: 0, count: 16)
        #expect(try buffer.withUnsafeMutableBufferPointer { try source.read(into: $0) } == 0)  // stays ended
    }

    @Test func garbageAsRawDecodesWithoutCrashing() throws {
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<40_001).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let samples = try F.readAll(open(noise, format: .f32le, rate: 16000))
        #expect(samples.count == 10_000)
        #expect(samples.allSatisfy { $0 >= -1 && $0 <= 1 })  // NaN and huge floats are clamped
    }
}
