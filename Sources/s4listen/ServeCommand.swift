import ArgumentParser
import Foundation
import S4Detection
import S4Service
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model's commands as wake words over the Wyoming protocol (Home Assistant, voice satellites).",
        discussion: """
            Each client streams audio at its own rate, width (2 or 4 bytes) and channel count; the \
            model runs at that rate with Δ rescaled (the audio is never resampled). A client gets \
            one "detection" per spoken command and "not-detected" after "audio-stop" when none \
            fired. SIGHUP reloads the model file (a bad new file keeps the old model); SIGTERM \
            stops cleanly. Under systemd (Type=notify) it reports READY, WATCHDOG and STOPPING.
            Examples:
              s4listen serve                                  # tcp://127.0.0.1:10400
              s4listen serve --uri tcp://0.0.0.0:10400        # the LAN (Home Assistant on another host; announced by zeroconf)
              s4listen serve --uri unix:///run/s4listen-wyoming/wyoming.sock
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Where to listen: tcp://HOST:PORT, unix://PATH or stdio:// (one client on standard input and output).")
    var uri: String = WyomingEndpoint.defaultURI

    @OptionGroup var thresholdOption: ThresholdOption

    @Option(
        help: ArgumentHelp(
            "Wake words armed when a client's detect names none (Home Assistant's default), comma-separated: go,stop.",
            discussion: "Default: every command word of the model. Short common words (on, no, go, up) are also said in "
                + "conversation and wake the satellite then: arm only those the room needs."))
    var words: String?

    /// `--words` as a set; empty when not given.
    private var wakeWords: Set<String> {
        Set(
            (words ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter {
                !$0.isEmpty
            })
    }

    @Flag(
        inversion: .prefixedNo,
        help: "Announce the server by zeroconf (Avahi) as _wyoming._tcp when it listens on a TCP address other than loopback.")
    var zeroconf = true

    @Option(help: "The name the server is announced under (default: \"s4listen on HOST\").")
    var zeroconfName: String?

    @Option(help: "Clients served at once; more are sent an error and disconnected.")
    var maxClients: Int = 32

    @Option(help: "Largest audio chunk a client may send, in bytes (a larger declared payload is refused unread).")
    var maxPayloadBytes: Int = WyomingLimits().payloadBytes

    @Option(help: "Close a client that completes no event for this many seconds (0: never).")
    var idleTimeout: Double = WyomingLimits().idleSeconds ?? 0

    @Option(help: "Close a client whose event is not complete this many seconds after its first byte.")
    var eventTimeout: Double = WyomingLimits().eventSeconds

    @Flag(name: .shortAndLong, help: "Log more on standard error (each client and stream).")
    var verbose = false

    func validate() throws {
        guard (1...4096).contains(maxClients) else { throw ValidationError("--max-clients must be between 1 and 4096") }
        guard (1024...(256 << 20)).contains(maxPayloadBytes) else {
            throw ValidationError("--max-payload-bytes must be between 1024 and 268435456")
        }
        guard idleTimeout == 0 || (1...86_400).contains(idleTimeout) else {
            throw ValidationError("--idle-timeout must be 0 (never) or between 1 and 86400 seconds")
        }
        guard (0.1...3600).contains(eventTimeout) else {
            throw ValidationError("--event-timeout must be between 0.1 and 3600 seconds")
        }
        do { _ = try WyomingEndpoint(uri: uri) } catch { throw ValidationError("--uri \(error)") }
        if words != nil && wakeWords.isEmpty { throw ValidationError("--words needs at least one word") }
        if let zeroconfName, !ZeroconfService.nameBytes.contains(zeroconfName.utf8.count) {
            throw ValidationError("--zeroconf-name must be 1 to 63 bytes long, got \(zeroconfName.utf8.count)")
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)  // a client that is gone is a write error on its own connection
        let logger = makeLogger(verbose: verbose)
        let (model, detectorConfiguration) = try modelOptions.loadForDetection(threshold: thresholdOption, logger: logger)
        let commands = WyomingInfo.commands(of: model)
        let unknown = wakeWords.subtracting(commands)
        guard unknown.isEmpty else {
            throw CommandFailure(
                "--words: \(unknown.sorted().joined(separator: ", ")) not among the model's command words "
                    + "(\(commands.joined(separator: ", ")))")
        }
        var limits = WyomingLimits()
        limits.payloadBytes = maxPayloadBytes
        limits.idleSeconds = idleTimeout == 0 ? nil : idleTimeout
        limits.eventSeconds = eventTimeout
        let notifier = SystemdNotifier()
        let options = modelOptions
        let server = try WyomingServer(
            endpoint: try WyomingEndpoint(uri: uri), model: model,
            reloader: ModelReloader(load: { try options.load().model }, logger: logger, notifier: notifier),
            detectorConfiguration: detectorConfiguration, wakeWords: wakeWords, limits: limits, maxClients: maxClients,
            notifier: notifier, logger: logger)
        let service = ZeroconfService(endpoint: server.endpoint, name: zeroconfName ?? ZeroconfService.defaultName)
        let announcer = zeroconf ? service.map { ZeroconfAnnouncer(service: $0, logger: logger) } : nil
        defer { announcer?.stop() }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
