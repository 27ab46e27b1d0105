import ArgumentParser
import Foundation
import Logging
import S4Audio
import S4Core
import S4Detection
import S4Service
import ServiceLifecycle

struct ListenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "listen",
        abstract: "Listen to a microphone, a file or a pipe; print one JSON line per spoken command.",
        discussion: """
            Samples go through S4's recurrent mode at the source's own rate (Δ is rescaled, never \
            the audio). Under systemd (Type=notify) it reports READY, WATCHDOG and STOPPING; SIGHUP \
            reloads the model file (a bad new file keeps the old model); SIGTERM stops cleanly.
            Examples:
              s4listen listen --device default
              arecord -q -f S16_LE -r 16000 -c 1 -t wav | s4listen listen --input -
              s4listen listen --input recording.flac
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "ALSA capture device (default, hw:1,0, plughw:…). The default source.")
    var device: String?

    @Option(help: "Audio file to read, or - for standard input.")
    var input: String?

    @Option(help: "Format of a pipe or raw file: wav, s16le or f32le (default: WAV if it has a RIFF header, else s16le).")
    var format: StreamFormat?

    @Option(help: "Sampling rate (Hz): required for raw input; for ALSA, the rate to ask the device for.")
    var rate: Int?

    @Option(help: "Channels of raw input (down-mixed), or to ask the ALSA device for.")
    var channels: Int?

    @OptionGroup var thresholdOption: ThresholdOption

    @Flag(help: "Also report _unknown_, _silence_ and commands under the threshold.")
    var all = false

    @Option(parsing: .unconditional, help: "Stop after this many seconds of audio (default: until the input ends or SIGTERM).")
    var seconds: Double?

    @Option(help: "Also send the event lines to clients of this Unix socket.")
    var socket: String?

    @Option(
        help:
            "Standard output per event: json (one object a line) or names (the command alone, a line each: a Wyoming satellite's external wake program)."
    )
    var output: EventOutput = .json

    @Flag(name: .shortAndLong, help: "Log more on standard error.")
    var verbose = false

    func validate() throws {
        // At most 1e9 s (31 years): the sample count it gives fits in an Int at any supported rate.
        if let seconds, !(seconds.isFinite && seconds > 0 && seconds <= 1e9) {
            throw ValidationError("--seconds must be a positive number of seconds, at most 1e9, got \(seconds)")
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)  // a closed reader is seen as a write error and ends the run cleanly
        let logger = makeLogger(verbose: verbose)
        let (model, thresholdConfiguration) = try modelOptions.loadForDetection(threshold: thresholdOption, logger: logger)
        let source = try openSource()
        var detectorConfiguration = thresholdConfiguration
        detectorConfiguration.reportEverything = all
        let eventSocket = try socket.map { path throws(ServiceError) in try EventSocket(path: path, logger: logger) }
        defer { eventSocket?.close() }  // the socket file goes before the process does
        let options = modelOptions
        let service = ListenService(
            source: source, model: model, loadModel: { try options.load().model },
            detectorConfiguration: detectorConfiguration, socket: eventSocket, notifier: SystemdNotifier(), logger: logger,
            output: output,
            sampleLimit: seconds.map { Int(($0 * Double(source.sampleRate)).rounded()) })
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    private func openSource() throws -> AudioSource {
        guard let input else {
            return try AlsaCapture(device: device ?? "default", sampleRate: rate, channels: channels)
        }
        if device != nil { throw ValidationError("give either --device or --input, not both") }
        if input == "-" {
            return try PipeSource(format: format, sampleRate: rate, channels: channels ?? 1)
        }
        var status = stat()
        let isNamedPipe = stat(input, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO
        // A named pipe is a stream: read as it arrives (waiting for a writer), like standard input.
        if isNamedPipe || (format != nil && format != .wav) {
            let fd = open(input, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CommandFailure("\(input): cannot open: \(String(cString: strerror(errno)))") }
            return try PipeSource(
                fileDescriptor: fd, name: input, format: format, sampleRate: rate,
                channels: channels ?? 1, closesDescriptor: true)
        }
        return try SoundFileReader(path: input)
    }
}

extension StreamFormat: ExpressibleByArgument {}
extension EventOutput: ExpressibleByArgument {}
