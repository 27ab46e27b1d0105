import CSndFile
import Foundation
import Testing

@testable import S4Audio

/// Reading audio files of any rate, format and channel count through libsndfile, and refusing bad ones.
@Suite struct SoundFileReaderTests {
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("s4audio-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    static func tone(rate: Int, seconds: Double = 0.5) -> [Float] {
        (0..<Int(Double(rate) * seconds)).map { Float(0.5 * sin(2 * Double.pi * 440 * Double($0) / Double(rate))) }
    }

    @Test(arguments: [8000, 11025, 16000, 22050, 44100, 48000])
    func readsWaveAtItsOwnRate(rate: Int) throws {
        let samples = Self.tone(rate: rate)
        let path = AudioFixtures.writeFile(
            "tone-\(rate).wav", frames: samples, rate: rate, channels: 1, format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16))
        let reader = try SoundFileReader(path: path)
        #expect(reader.sampleRate == rate)
        let read = try reader.readAll()
        #expect(read.count == samples.count)
        // 16-bit quantisation: half a step of 2^-15.
        #expect(zip(read, samples).allSatisfy { abs($0 - $1) <= 1.0 / 32768 })
    }

    @Test func flacAndFloatWaveAreExact() throws {
        let samples = Self.tone(rate: 16000)
        let flac = AudioFixtures.writeFile(
            "tone.flac", frames: samples, rate: 16000, channels: 1, format: Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_16))
        let float = AudioFixtures.writeFile(
            "tone-float.wav", frames: samples, rate: 16000, channels: 1, format: Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT))
        #expect(try SoundFileReader(path: float).readAll() == samples)
        #expect(zip(try SoundFileReader(path: flac).readAll(), samples).allSatisfy { abs($0 - $1) <= 1.0 / 32768 })
    }

    /// A float file holding NaN or values past full scale reads as a pipe would deliver it.
    @Test func nonFiniteAndOverRangeFloatsAreTamed() throws {
        let samples: [Float] = [0.5, .nan, 2, -3, .infinity, -0.25]
        let path = AudioFixtures.writeFile(
            "wild.wav", frames: samples, rate: 16000, channels: 1,
            format: Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT))
        #expect(try SoundFileReader(path: path).readAll() == [0.5, 0, 1, -1, 1, -0.25])
    }

    @Test func stereoIsDownMixed() throws {
        let left = Self.tone(rate: 16000), right = left.map { -0.5 * $0 }
        let interleaved = zip(left, right).flatMap { [$0, $1] }
        let path = AudioFixtures.writeFile(
            "stereo.wav", frames: interleaved, rate: 16000, channels: 2, format: Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT))
        let reader = try SoundFileReader(path: path)
        #expect(reader.channelCount == 2)
        let mono = try reader.readAll()
        #expect(mono.count == left.count)
        #expect(zip(mono, left).allSatisfy { abs($0 - 0.25 * $1) < 1e-6 })
    }

    @Test func notAudioIsRefused() throws {
        let path = Self.directory.appendingPathComponent("notes.txt").path
        try "these are not samples\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: AudioSourceError.self) { try SoundFileReader(path: path) }
    }

    @Test func missingFileIsRefused() {
        do {
            _ = try SoundFileReader(path: "/nonexistent/clip.wav")
            Issue.record("accepted a missing file")
        } catch {
            #expect(error.description.hasPrefix("/nonexistent/clip.wav: cannot read audio"))
        }
    }

    @Test func zeroLengthAudioIsRefused() throws {
        let path = AudioFixtures.writeFile(
            "empty.wav", frames: [], rate: 16000, channels: 1, format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16))
        #expect(throws: AudioSourceError.noAudio(source: path)) { try SoundFileReader(path: path).readAll() }
        let emptyFile = Self.directory.appendingPathComponent("zero-bytes.wav").path
        _ = FileManager.default.createFile(atPath: emptyFile, contents: Data())
        #expect(throws: AudioSourceError.self) { try SoundFileReader(path: emptyFile) }
    }

    @Test func truncatedFileGivesWhatIsThere() throws {
        let samples = Self.tone(rate: 16000)
        let path = AudioFixtures.writeFile(
            "full.wav", frames: samples, rate: 16000, channels: 1, format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = Self.directory.appendingPathComponent("cut.wav").path
        _ = FileManager.default.createFile(atPath: cut, contents: bytes.prefix(44 + 2 * 1000))
        let read = try SoundFileReader(path: cut).readAll()
        #expect(read.count == 1000)
        // Cut inside the header: refused.
        let header = Self.directory.appendingPathComponent("header.wav").path
        _ = FileManager.default.createFile(atPath: header, contents: bytes.prefix(20))
        #expect(throws: AudioSourceError.self) { try SoundFileReader(path: header) }
    }

    @Test func absurdRateIsRefused() throws {
        let path = AudioFixtures.writeFile(
            "slow.wav", frames: Self.tone(rate: 100), rate: 100, channels: 1, format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16))
        #expect(throws: AudioSourceError.unsupportedRate(source: path, rate: 100)) { try SoundFileReader(path: path) }
    }

    /// Real MP3s (made with lame from a sample: CBR at 16 and 8 kHz, VBR at 48 kHz with an ID3v2
    /// tag, free format, two tags in a row, zeros after a tag) pass the check for MPEG frames
    /// and are read; what only starts like MP3 is refused (HardeningTests).
    @Test(arguments: [
        ("cbr-16k", 16000), ("cbr-8k", 8000), ("vbr-id3-48k", 48000), ("free-format", 16000), ("two-tags", 16000),
        ("junk-after-tag", 16000),
    ])
    func realMP3sAreRead(name: String, rate: Int) throws {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "mp3", subdirectory: "Fixtures"))
        let reader = try SoundFileReader(path: url.path)
        #expect(reader.sampleRate == rate)
        let samples = try reader.readAll()
        #expect(samples.count > rate / 5 && samples.contains { abs($0) > 0.01 })
    }

    /// Frame lengths by ISO/IEC 11172-3 and 13818-3, and headers that are no frame.
    @Test func mpegFrameLengths() {
        #expect(MPEGFrameChain.frameLength([0xFF, 0xFB, 0x90, 0x64]) == 417)  // MPEG-1 III, 128 kbit/s, 44.1 kHz
        #expect(MPEGFrameChain.frameLength([0xFF, 0xFB, 0x92, 0x64]) == 418)  // the same, padded
        #expect(MPEGFrameChain.frameLength([0xFF, 0xF3, 0x88, 0x64]) == 288)  // MPEG-2 III, 64 kbit/s, 16 kHz
        #expect(MPEGFrameChain.frameLength([0xFF, 0xE3, 0x28, 0x64]) == 144)  // MPEG-2.5 III, 16 kbit/s, 8 kHz
        #expect(MPEGFrameChain.frameLength([0xFF, 0xFF, 0x10, 0x00]) == 32)  // MPEG-1 I, 32 kbit/s, 44.1 kHz
        #expect(MPEGFrameChain.frameLength([0xFF, 0xFD, 0x84, 0x00]) == 384)  // MPEG-1 II, 128 kbit/s, 48 kHz
        for reserved in [
            [0xFF, 0xEB, 0x90, 0x64], [0xFF, 0xF9, 0x90, 0x64], [0xFF, 0xFB, 0xF0, 0x64], [0xFF, 0xFB, 0x9C, 0x64],
        ] {
            #expect(MPEGFrameChain.frameLength(reserved.map(UInt8.init)) == nil, "\(reserved)")
        }
    }
}
