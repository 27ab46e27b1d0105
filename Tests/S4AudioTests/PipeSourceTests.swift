import CSndFile
import Foundation
import Testing

@testable import S4Audio

/// Audio on a pipe: WAV and raw at several rates, fed in pieces, decoded incrementally.
@Suite struct PipeSourceTests {
    typealias F = AudioFixtures

    @Test(arguments: [8000, 16000, 44100, 48000])
    func wavOnAPipeMatchesTheFileReader(rate: Int) throws {
        let path = F.writeFile(
            "pipe-\(rate).wav", frames: F.tone(count: rate * 3 / 10, rate: rate), rate: rate, channels: 1,
            format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16))
        let source = try PipeSource(fileDescriptor: PipeFeeder.start(F.bytes(of: path)), format: .wav, closesDescriptor: true)
        #expect(source.sampleRate == rate)
        #expect(source.channelCount == 1)
        #expect(try F.readAll(source) == SoundFileReader(path: path).readAll())
    }

    @Test(arguments: [8000, 16000, 44100, 48000], [StreamFormat.s16le, .f32le])
    func rawOnAPipeAtItsOwnRate(rate: Int, format: StreamFormat) throws {
        let samples = F.int16Frames(count: rate / 4)
        let expected = F.mono(samples, channels: 1)
        let bytes = format == .s16le ? F.s16le(samples) : F.f32le(expected)
        let source = try PipeSource(
            fileDescriptor: PipeFeeder.start(bytes), format: format, sampleRate: rate, closesDescriptor: true)
        #expect(source.sampleRate == rate)
        #expect(source.format == format)
        #expect(try F.readAll(source) == expected)
    }

    @Test func stereoRawIsDownMixed() throws {
        let samples = F.int16Frames(count: 4000, channels: 2)
        let source = try PipeSource(
            fileDescriptor: PipeFeeder.start(F.s16le(samples)), format: .s16le, sampleRate: 16000,
            channels: 2, closesDescriptor: true)
        #expect(source.channelCount == 2)
        #expect(try F.readAll(source) == F.mono(samples, channels: 2))
    }

    /// Float, 24-bit, 8-bit and WAVE_FORMAT_EXTENSIBLE headers, mono and multichannel.
    @Test(arguments: [
        (SF_FORMAT_WAV | SF_FORMAT_FLOAT, 2), (SF_FORMAT_WAV | SF_FORMAT_PCM_24, 1), (SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 1),
        (SF_FORMAT_WAV | SF_FORMAT_PCM_32, 2), (SF_FORMAT_WAV | SF_FORMAT_DOUBLE, 1), (SF_FORMAT_WAVEX | SF_FORMAT_PCM_16, 3),
    ])
    func wavEncodingsMatchTheFileReader(format: Int, channels: Int) throws {
        let path = F.writeFile(
            "enc-\(format)-\(channels).wav", frames: F.tone(count: 5000, rate: 22050, channels: channels),
            rate: 22050, channels: channels, format: Int32(format))
        let source = try PipeSource(fileDescriptor: PipeFeeder.start(F.bytes(of: path)), closesDescriptor: true)
        #expect(source.format == .wav)
        #expect(source.channelCount == channels)
        let expected = try SoundFileReader(path: path).readAll()
        let read = try F.readAll(source)
        #expect(read.count == expected.count)
        #expect(zip(read, expected).allSatisfy { abs($0 - $1) <= 1e-6 })
    }

    @Test func formatIsDetected() throws {
        let path = F.writeFile(
            "detect.wav", frames: F.tone(count: 800, rate: 8000), rate: 8000, channels: 1,
            format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16))
        let wav = try PipeSource(fileDescriptor: PipeFeeder.start(F.bytes(of: path)), sampleRate: 16000, closesDescriptor: true)
        #expect(wav.format == .wav)
        #expect(wav.sampleRate == 8000)  // the header wins over the given rate
        #expect(try F.readAll(wav).count == 800)

        let samples = F.int16Frames(count: 3001)
        let raw = try PipeSource(fileDescriptor: PipeFeeder.start(F.s16le(samples)), sampleRate: 16000, closesDescriptor: true)
        #expect(raw.format == .s16le)
        #expect(try F.readAll(raw) == F.mono(samples, channels: 1))  // the 4 sniffed bytes are not lost
    }

    /// sox and arecord write a data length of about 2 GB when streaming; it must not stop the stream,
    /// while an honest length must (a LIST chunk after the samples is not audio).
    @Test func streamingLengthRunsToEOFAndHonestLengthStops() throws {
        let samples = F.int16Frames(count: 2000)
        var header = F.bytes(
            of: F.writeFile("head.wav", frames: [], rate: 16000, channels: 1, format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)))
        #expect(header.count == 44)
        header.replaceSubrange(4..<8, with: [0x24, 0xF0, 0xFF, 0x7F])
        header.replaceSubrange(40..<44, with: [0x00, 0xF0, 0xFF, 0x7F])
        let streamed = try PipeSource(fileDescriptor: PipeFeeder.start(header + F.s16le(samples)), closesDescriptor: true)
        #expect(try F.readAll(streamed) == F.mono(samples, channels: 1))

        let honest = F.bytes(
            of: F.writeFile(
                "honest.wav", frames: F.mono(samples, channels: 1), rate: 16000, channels: 1,
                format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)))
        let trailer = Array("LIST".utf8) + [8, 0, 0, 0] + Array("INFOjunk".utf8)
        let stopped = try PipeSource(fileDescriptor: PipeFeeder.start(honest + trailer), format: .wav, closesDescriptor: true)
        #expect(try F.readAll(stopped) == F.mono(samples, channels: 1))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sox")))
    func soxStreamedWAV() throws {
        let (source, samples) = try F.readAll(
            fromProcess: "/usr/bin/sox",
            [
                "-D", "-n", "-r", "44100", "-c", "2", "-b", "16", "-t", "wav", "-", "synth", "0.5", "sine", "440", "gain", "-6",
            ])
        #expect(source.sampleRate == 44100 && source.channelCount == 2)
        #expect(samples.count == 22050)
        let peak = samples.map(abs).max() ?? 0
        #expect(peak > 0.45 && peak < 0.55)  // −6 dB
    }

    /// arecord writing WAV to stdout, capturing from a `file`-plugin PCM (ALSA_CONFIG_PATH is set
    /// for the child process only).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/arecord")))
    func arecordWAVOnAPipe() throws {
        let samples = F.int16Frames(count: 4800, channels: 2)
        let infile = F.directory.appendingPathComponent("arecord-in.raw").path
        let config = F.directory.appendingPathComponent("arecord.conf").path
        _ = FileManager.default.createFile(atPath: infile, contents: Data(F.s16le(samples)))
        try AlsaCapture.filePluginConfiguration(pcm: "s4arecord", infile: infile).write(
            toFile: config, atomically: true, encoding: .utf8)
        let (source, read) = try F.readAll(
            fromProcess: "/usr/bin/arecord",
            ["-q", "-D", "s4arecord", "-f", "S16_LE", "-r", "48000", "-c", "2", "-s", "4800", "-t", "wav", "-"],
            environment: ["ALSA_CONFIG_PATH": "/usr/share/alsa/alsa.conf:\(config)"])
        #expect(source.sampleRate == 48000 && source.channelCount == 2)
        #expect(read == F.mono(samples, channels: 2))
    }

    /// The first read must return what arrived, while the writer holds the rest back.
    @Test(arguments: [StreamFormat.wav, .s16le, .f32le])
    func readsReturnWhatHasArrived(format: StreamFormat) throws {
        let samples = F.int16Frames(count: 16000)
        let expected = F.mono(samples, channels: 1)
        let bytes: [UInt8] =
            switch format {
            case .wav:
                F.bytes(
                    of: F.writeFile(
                        "gate.wav", frames: expected, rate: 16000, channels: 1, format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)))
            case .s16le: F.s16le(samples)
            case .f32le: F.f32le(expected)
            }
        let gate = Gate()
        let source = try PipeSource(
            fileDescriptor: PipeFeeder.start(bytes, pieces: 4, gate: gate), format: format,
            sampleRate: 16000, closesDescriptor: true)
        var buffer = [Float](repeating: 0, count: 4096)
        let first = try buffer.withUnsafeMutableBufferPointer { try source.read(into: $0) }
        gate.open()
        #expect(first > 0 && first < 4096)
        let rest = try F.readAll(source)
        #expect(!gate.timedOut)
        #expect(Array(buffer[0..<first]) + rest == expected)
    }

    /// Writes of one or two bytes (cuts at odd offsets): reads meet partial samples and frames
    /// that must be kept for the next one.
    @Test func byteByByteStereoFloat() throws {
        let frames = F.tone(count: 300, rate: 16000, channels: 2)
        let source = try PipeSource(
            fileDescriptor: PipeFeeder.start(F.f32le(frames), pieces: frames.count * 4, pause: 0),
            format: .f32le, sampleRate: 16000, channels: 2, closesDescriptor: true)
        let read = try F.readAll(source, block: 7)
        let expected = stride(from: 0, to: frames.count, by: 2).map { (frames[$0] + frames[$0 + 1]) * 0.5 }
        #expect(read == expected)
    }

    @Test func soundFileReaderIsAnAudioSource() throws {
        let path = F.writeFile(
            "conform.wav", frames: F.tone(count: 2500, rate: 16000), rate: 16000, channels: 1,
            format: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16))
        let source: any AudioSource = try SoundFileReader(path: path)
        #expect(source.description == path)
        #expect(try F.readAll(source).count == 2500)
    }
}
