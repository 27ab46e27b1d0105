import Foundation
import Testing

@testable import S4Audio

/// ALSA capture without sound hardware: the `file` plugin over a `null` slave, defined in process.
@Suite struct AlsaCaptureTests {
    typealias F = AudioFixtures

    static func rawFile(_ name: String, _ samples: [Int16]) -> String {
        let path = F.directory.appendingPathComponent(name).path
        _ = FileManager.default.createFile(atPath: path, contents: Data(F.s16le(samples)))
        return path
    }

    @Test(arguments: [8000, 16000, 48000])
    func replaysAFileSampleForSample(rate: Int) throws {
        let samples = F.int16Frames(count: rate / 2 + 17)
        let capture = try AlsaCapture(replaying: Self.rawFile("alsa-\(rate).raw", samples), sampleRate: rate)
        #expect(capture.sampleRate == rate)
        #expect(capture.channelCount == 1)
        #expect(capture.periodFrames > 0 && capture.periodFrames <= rate / 10)
        #expect(capture.frameLimit == samples.count)
        #expect(try F.readAll(capture, block: 4096) == F.mono(samples, channels: 1))
        #expect(capture.overrunCount == 0)
    }

    /// The PCM named in configuration text (snd_pcm_open_lconf), stereo, down-mixed.
    @Test func stereoIsDownMixed() throws {
        let samples = F.int16Frames(count: 6000, channels: 2)
        let path = Self.rawFile("alsa-stereo.raw", samples)
        let capture = try AlsaCapture(
            device: "s4test", sampleRate: 16000, channels: 2, periodFrames: 256,
            configuration: AlsaCapture.filePluginConfiguration(pcm: "s4test", infile: path), frameLimit: 6000)
        #expect(capture.channelCount == 2)
        #expect(capture.periodFrames == 256)
        var buffer = [Float](repeating: 0, count: 10_000)
        let first = try buffer.withUnsafeMutableBufferPointer { try capture.read(into: $0) }
        #expect(first == 256)  // one period per read
        let read = Array(buffer[0..<first]) + (try F.readAll(capture, block: 10_000))
        #expect(read == F.mono(samples, channels: 2))
    }

    /// Past the end of the infile the null slave writes nothing: the source gives silence, not a
    /// repeat of the last period.
    @Test func pastTheEndIsSilenceNotStaleAudio() throws {
        let samples = F.int16Frames(count: 1000)
        let path = Self.rawFile("alsa-short.raw", samples)
        let capture = try AlsaCapture(
            device: "s4short", sampleRate: 16000, periodFrames: 160,
            configuration: AlsaCapture.filePluginConfiguration(pcm: "s4short", infile: path))
        #expect(capture.frameLimit == nil)
        let read = try F.readAll(capture, block: 160, limit: 2000)
        #expect(read.count == 2080)
        #expect(Array(read[0..<1000]) == F.mono(samples, channels: 1))
        #expect(read[1000...].allSatisfy { $0 == 0 })
    }

    /// An overrun (-EPIPE) is recovered with snd_pcm_recover, counted, and capture goes on.
    @Test func overrunIsRecoveredAndCounted() throws {
        let samples = F.int16Frames(count: 4000)
        let capture = try AlsaCapture(replaying: Self.rawFile("alsa-xrun.raw", samples), sampleRate: 16000, periodFrames: 400)
        var buffer = [Float](repeating: 0, count: 400)
        #expect(try buffer.withUnsafeMutableBufferPointer { try capture.read(into: $0) } == 400)
        try capture.recover(from: -EPIPE)
        try capture.recover(from: -EPIPE)
        #expect(capture.overrunCount == 2)
        let rest = try F.readAll(capture, block: 400)
        #expect(rest == Array(F.mono(samples, channels: 1)[400...]))
        #expect(throws: AudioSourceError.self) { try capture.recover(from: -ENODEV) }
    }

    /// A FIFO infile: the writer paces the capture, as a microphone would.
    @Test func fifoIsALiveSource() throws {
        let path = F.directory.appendingPathComponent("alsa-live.fifo").path
        unlink(path)
        #expect(mkfifo(path, 0o600) == 0)
        let samples = F.int16Frames(count: 3200)
        let bytes = F.s16le(samples)
        Thread.detachNewThread {
            let fd = open(path, O_WRONLY)  // blocks until the capture opens the FIFO
            for start in stride(from: 0, to: bytes.count, by: 1280) {
                _ = PipeFeeder.writeAll(fd, bytes[start..<min(start + 1280, bytes.count)])
                Thread.sleep(forTimeInterval: 0.01)
            }
            close(fd)
        }
        let started = Date()
        let capture = try AlsaCapture(replaying: path, sampleRate: 16000, periodFrames: 320)
        #expect(capture.frameLimit == nil)
        let read = try F.readAll(capture, block: 320, limit: 3200)
        #expect(read == F.mono(samples, channels: 1))
        #expect(Date().timeIntervalSince(started) > 0.04)  // paced by the writer, not instant
    }

    @Test func errorsNameTheDevice() throws {
        let missing = String(describing: #expect(throws: AudioSourceError.self) { try AlsaCapture(device: "hw:42,0") })
        #expect(missing.contains("ALSA device hw:42,0: cannot read audio"))
        let undefined = String(
            describing: #expect(throws: AudioSourceError.self) {
                try AlsaCapture(
                    device: "nosuch", configuration: AlsaCapture.filePluginConfiguration(pcm: "other", infile: "/dev/null"))
            })
        #expect(undefined.contains("ALSA device nosuch"))
        let broken = String(
            describing: #expect(throws: AudioSourceError.self) {
                try AlsaCapture(device: "s4", configuration: "pcm.s4 { type file")
            })
        #expect(broken.contains("does not parse"))
        #expect(throws: AudioSourceError.unsupportedRate(source: "ALSA device default", rate: 100)) {
            try AlsaCapture(device: "default", sampleRate: 100)
        }
        #expect(throws: AudioSourceError.self) { try AlsaCapture(replaying: "/nonexistent/take.raw", sampleRate: 16000) }
    }
}
