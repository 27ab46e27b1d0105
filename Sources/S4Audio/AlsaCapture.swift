import CALSA
import S4Core

#if canImport(Glibc)
import Glibc
#endif

/// Live capture from an ALSA PCM (`default`, `hw:1,0`, `plughw:…`), or from a PCM defined by
/// configuration text in this process (the `file` plugin, for tests and replays without hardware).
///
/// One `read` takes at most one period (a larger `snd_pcm_readi` through the `file` plugin returns
/// wrong samples), so a read returns as soon as a period is captured. Overruns (the consumer fell
/// behind) are recovered with `snd_pcm_recover` and counted in `overrunCount`; the stream goes on.
///
/// A real device never ends. The `file` plugin's `null` slave does not signal the end of its
/// infile and leaves the caller's buffer untouched from then on, so the period buffer is zeroed
/// before each read (after the end you get silence, never a repeat of stale audio), and
/// `frameLimit` ends the stream after a known number of frames (`init(replaying:)` sets it from
/// the file's length).
public final class AlsaCapture: AudioSource {
    /// The PCM name as given.
    public let device: String
    public let sampleRate: Int
    /// Channels the device delivers, before the down-mix.
    public let channelCount: Int
    /// Frames per ALSA period: the most one `read` returns.
    public let periodFrames: Int
    /// Frames after which `read` returns 0; nil for a live device.
    public let frameLimit: Int?
    /// Overruns (and suspends) recovered so far: each one lost some audio.
    public private(set) var overrunCount = 0
    /// Frames delivered so far.
    public private(set) var framesRead = 0

    public var description: String { "ALSA device \(device)" }

    private let pcm: OpaquePointer
    private let configuration: AlsaConfiguration?
    private let encoding: SampleEncoding
    private let period: UnsafeMutableRawBufferPointer

    /// Opens `device` for capture and negotiates its parameters (see `AlsaHardwareSetup.negotiate`).
    ///
    /// - Parameters:
    ///   - sampleRate: exactly this rate; nil takes the device's native rate nearest to 16 kHz.
    ///   - channels: exactly this many; nil takes the fewest the device offers.
    ///   - periodFrames: about this many frames per period; nil gives 20 ms.
    ///   - configuration: ALSA configuration text that defines `device`; the system configuration
    ///     is then not consulted (`snd_pcm_open_lconf`).
    ///   - frameLimit: end the stream after this many frames.
    public init(
        device: String = "default", sampleRate: Int? = nil, channels: Int? = nil, periodFrames: Int? = nil,
        configuration: String? = nil, frameLimit: Int? = nil
    ) throws(AudioSourceError) {
        _ = Self.quietErrors
        self.device = device
        self.frameLimit = frameLimit
        let source = "ALSA device \(device)"
        if let sampleRate, !supportedSampleRates.contains(sampleRate) {
            throw .unsupportedRate(source: source, rate: sampleRate)
        }
        if let channels, !(1...StreamingWAVHeader.maxChannels).contains(channels) {
            throw .cannotOpen(source: source, reason: "\(channels) channels (1…\(StreamingWAVHeader.maxChannels) supported)")
        }
        self.configuration = try configuration.map { text throws(AudioSourceError) in
            try AlsaConfiguration(text: text, source: source)
        }

        // Opened non-blocking so that a device held by another program fails at once instead of
        // hanging the daemon's start; reads are then switched to blocking.
        var handle: OpaquePointer?
        let mode = Int32(SND_PCM_NONBLOCK)
        let opened =
            if let tree = self.configuration?.tree {
                snd_pcm_open_lconf(&handle, device, SND_PCM_STREAM_CAPTURE, mode, tree)
            } else {
                snd_pcm_open(&handle, device, SND_PCM_STREAM_CAPTURE, mode)
            }
        guard opened == 0, let handle else {
            throw .cannotOpen(source: source, reason: "cannot open for capture: \(Self.errorText(opened))")
        }
        let setup: AlsaHardwareSetup
        do throws(AudioSourceError) {
            if snd_pcm_nonblock(handle, 0) < 0 { throw .cannotOpen(source: source, reason: "cannot switch to blocking reads") }
            setup = try AlsaHardwareSetup.negotiate(
                pcm: handle, rate: sampleRate, channels: channels, periodFrames: periodFrames, source: source)
            guard supportedSampleRates.contains(setup.sampleRate) else {
                throw .unsupportedRate(source: source, rate: setup.sampleRate)
            }
        } catch {
            snd_pcm_close(handle)
            throw error
        }
        pcm = handle
        self.sampleRate = setup.sampleRate
        channelCount = setup.channels
        encoding = setup.encoding
        self.periodFrames = setup.periodFrames
        period = .allocate(byteCount: setup.periodFrames * setup.channels * setup.encoding.bytesPerSample, alignment: 16)
    }

    /// Replays a raw interleaved S16_LE recording through ALSA's `file` plugin, exercising the same
    /// capture path as a microphone. A regular file ends after its own length; a FIFO is paced by
    /// its writer and, as the plugin cannot tell its end, turns into silence after it.
    public convenience init(
        replaying path: String, sampleRate: Int, channels: Int = 1, periodFrames: Int? = nil
    ) throws(AudioSourceError) {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw .cannotOpen(source: path, reason: DescriptorInput.errorText(errno))
        }
        let isFIFO = (status.st_mode & S_IFMT) == S_IFIFO
        let frames = isFIFO ? nil : Int(status.st_size) / (2 * channels)
        try self.init(
            device: "s4replay", sampleRate: sampleRate, channels: channels, periodFrames: periodFrames,
            configuration: Self.filePluginConfiguration(pcm: "s4replay", infile: path), frameLimit: frames)
    }

    deinit {
        snd_pcm_close(pcm)
        period.deallocate()
    }

    /// Configuration text that defines `pcm` (a plain identifier) as the `file` plugin capturing
    /// from `infile`: raw interleaved S16_LE at whatever rate and channel count is then requested.
    public static func filePluginConfiguration(pcm: String, infile: String) -> String {
        AlsaConfiguration.filePlugin(name: pcm, infile: infile)
    }

    public func read(into output: UnsafeMutableBufferPointer<Float>) throws(AudioSourceError) -> Int {
        var frames = Swift.min(output.count, periodFrames)
        if let frameLimit { frames = Swift.min(frames, frameLimit - framesRead) }
        guard frames > 0, let buffer = period.baseAddress, let out = output.baseAddress else { return 0 }
        while true {
            memset(buffer, 0, frames * channelCount * encoding.bytesPerSample)
            let got = snd_pcm_readi(pcm, buffer, snd_pcm_uframes_t(frames))
            if got > 0 {
                encoding.decodeMono(buffer, frames: got, channels: channelCount, into: out)
                framesRead += got
                return got
            }
            if got == 0 || Int32(got) == -EAGAIN {
                _ = snd_pcm_wait(pcm, 1000)
                continue
            }
            try recover(from: Int32(got))
        }
    }

    /// Recovers from a failed read: an overrun (-EPIPE) or a suspend (-ESTRPIPE) restarts the
    /// stream and is counted; an interrupted call is retried; anything else (a device unplugged,
    /// -ENODEV) is thrown, naming the device.
    func recover(from error: Int32) throws(AudioSourceError) {
        if error == -EPIPE || error == -ESTRPIPE { overrunCount += 1 }
        let result = snd_pcm_recover(pcm, error, 1)
        if result < 0 {
            throw .readFailed(source: description, reason: Self.errorText(error))
        }
    }

    static func errorText(_ code: Int32) -> String { String(cString: snd_strerror(code)) }

    /// alsa-lib's own stderr lines are dropped, once per process: errors are reported by the
    /// thrown `AudioSourceError`, which names the device.
    private static let quietErrors: Void = s4_alsa_silence_errors()
}
