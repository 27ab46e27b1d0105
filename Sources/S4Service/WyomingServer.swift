import Dispatch
import Foundation
import Logging
import S4Core
import S4Detection
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `s4listen serve`: a Wyoming wake-word server (Home Assistant, voice satellites). Each client is
/// served on a thread of its own with its own detector at the rate it streams (Δ rescaled, no
/// resampling); at most `maxClients` at once. When every place is taken, a newcomer displaces the
/// client idle the longest (idle at least `limits.displaceableAfterSeconds`); when every client
/// is busy, the newcomer is told so and disconnected. Idle or trickling clients therefore cannot
/// lock others out, and streaming clients are never cut off for a newcomer.
///
/// Lifecycle (systemd `Type=notify`): READY=1 once the socket listens; WATCHDOG=1 from the accept
/// loop; SIGHUP reloads the model file (a bad file keeps the running model) and every client's
/// detector takes the new one between utterances; on SIGTERM/SIGINT it stops accepting,
/// disconnects the clients, removes a Unix socket file and sends STOPPING=1. With `stdio://` it
/// serves one client on standard input and output and ends with it.
public final class WyomingServer: Service, @unchecked Sendable {
    public let endpoint: WyomingEndpoint
    private let listener: Int32?
    private let models: SharedModel
    private let reloader: ModelReloader
    private let configuration: DetectorConfiguration
    /// The words reported when a client's `detect` names none (empty: every command).
    private let wakeWords: Set<String>
    private let limits: WyomingLimits
    private let maxClients: Int
    private let notifier: SystemdNotifier
    private let logger: Logger
    /// The connected clients by socket, and how many displaced ones are still being told why
    /// (each holds a thread and a descriptor until then); nil once stopping.
    private struct Places {
        var clients: [Int32: ClientPlace] = [:]
        var leaving = 0
    }
    private let places = Mutex<Places?>(Places())
    private let connectionsDone = DispatchGroup()

    /// Binds the endpoint at once, so a taken port or a bad path fails before anything starts.
    public init(
        endpoint: WyomingEndpoint, model: S4Model, reloader: ModelReloader, detectorConfiguration: DetectorConfiguration,
        wakeWords: Set<String> = [], limits: WyomingLimits = WyomingLimits(), maxClients: Int = 32,
        notifier: SystemdNotifier, logger: Logger
    ) throws(ServiceError) {
        self.endpoint = endpoint
        listener = endpoint == .stdio ? nil : try endpoint.listen()
        models = SharedModel(model)
        self.reloader = reloader
        configuration = detectorConfiguration
        self.wakeWords = wakeWords
        self.limits = limits
        self.maxClients = maxClients
        self.notifier = notifier
        self.logger = logger
    }

    public func run() async throws {
        let finished = OnceContinuation()
        let hangup = ModelReloader.onHangup { [models, reloader] in
            if let next = reloader.reload() { models.replace(next) }
        }
        defer { hangup.cancel() }
        defer { stop() }  // also when the stdio client ends

        let thread: Thread
        if let listener {
            thread = Thread { [self] in acceptLoop(listener) }
        } else {
            thread = Thread { [self] in
                var limits = limits
                limits.idleSeconds = nil
                let ending = WyomingConnection(
                    input: STDIN_FILENO, output: STDOUT_FILENO, place: nil, client: "stdio", models: models,
                    configuration: configuration, wakeWords: wakeWords, limits: limits, logger: logger
                ).run()
                // Standard output that cannot be written is the command's failure, not a quiet end;
                // a reader that has gone (a closed pipe) ends it cleanly.
                if case .writeFailed(let code) = ending, code != EPIPE {
                    finished.resume(with: .failure(OutputError(reason: String(cString: strerror(code)))))
                } else {
                    finished.resume(with: .success(()))
                }
            }
        }
        thread.name = "s4listen wyoming"
        thread.start()
        let words = (wakeWords.isEmpty ? WyomingInfo.commands(of: models.current.model) : wakeWords.sorted())
            .joined(separator: " ")
        notifier.notify("READY=1\nSTATUS=serving Wyoming on \(endpoint)")
        logger.notice("serving Wyoming", metadata: ["uri": "\(endpoint)", "wake_words": "\(words)"])
        try await withGracefulShutdownHandler {
            try await finished.wait()
        } onGracefulShutdown: { [self] in
            stop()
            // Connections end as their sockets are shut down; a stdio client that never sends
            // again must not hold up the shutdown: the wait ends after one second regardless.
            DispatchQueue.global().async { [connectionsDone] in
                _ = connectionsDone.wait(timeout: .now() + 1)
                finished.resume(with: .success(()))
            }
        }
    }

    /// Stops accepting and disconnects every client (once; later calls do nothing).
    private func stop() {
        // Shutting the sockets down wakes the threads blocked in poll or read; under the lock, so
        // that no client's thread has closed its socket yet (it takes the lock first).
        let stopped = places.withLock { places -> Bool in
            guard let open = places else { return false }
            if let listener { shutdown(listener, Int32(SHUT_RDWR)) }
            open.clients.keys.forEach { shutdown($0, Int32(SHUT_RDWR)) }
            places = nil
            return true
        }
        guard stopped else { return }
        notifier.notify("STOPPING=1")
        if let path = endpoint.socketPath { unlink(path) }
    }

    private var isStopping: Bool { places.withLock { $0 == nil } }

    private func acceptLoop(_ listener: Int32) {
        var refused = RefusedClients()
        defer {
            refused.closeAll()
            close(listener)
        }
        // Wakes at least once a second (and as often as the watchdog needs) to ping and to see a stop.
        let pollMilliseconds = Int32(min(1000, max(1, notifier.watchdogInterval.map { Int($0 / .milliseconds(1)) } ?? 1000)))
        var lastPing = ContinuousClock.now
        var serial = 0
        var shortage = DescriptorShortage(what: "Wyoming server")
        while !isStopping {
            var pollers = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)] + refused.pollers
            // Out of descriptors, the listener is left out for a moment rather than spun on, and
            // what refused clients hold is given back meanwhile.
            var wait = refused.isEmpty ? pollMilliseconds : min(pollMilliseconds, 100)
            if let pause = shortage.wait, pause > .zero {
                pollers[0].fd = -1
                wait = min(wait, Int32((pause / .milliseconds(1)).rounded(.up)))
            }
            let ready = poll(&pollers, nfds_t(pollers.count), wait)
            if let interval = notifier.watchdogInterval, ContinuousClock.now - lastPing >= interval {
                places.withLock { if $0 != nil { notifier.notify("WATCHDOG=1") } }
                lastPing = .now
            }
            refused.serve(pollers.dropFirst())
            guard ready > 0, pollers[0].revents != 0, !isStopping else { continue }
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) }
            }
            guard fd >= 0 else {
                shortage.failed(errno, logger: logger)
                continue
            }
            shortage.accepted(logger: logger)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            serial += 1
            admit(fd, client: "#\(serial) \(Self.peer(address))", refused: &refused)
        }
    }

    /// Serves a new client on a thread of its own, displacing an idle client if every place is
    /// taken, or refuses it when every client is busy.
    private func admit(_ fd: Int32, client: String, refused: inout RefusedClients) {
        let displaceable = Duration.seconds(limits.displaceableAfterSeconds)
        let place = ClientPlace(fd: fd)
        enum Admission { case admitted, full, stopping }
        let admission = places.withLock { places -> Admission in
            guard places != nil else { return .stopping }
            if places!.clients.count >= maxClients {
                // The client idle the longest gives up its place, if it is idle enough and fewer
                // than `maxClients` displaced ones are still on their way out. It leaves the count
                // at once and is told by its own thread.
                guard places!.leaving < maxClients,
                    let longest = places!.clients.values.max(by: { $0.idle < $1.idle }), longest.idle >= displaceable
                else { return .full }
                places!.clients[longest.fd] = nil
                places!.leaving += 1
                longest.displace()
            }
            places!.clients[fd] = place
            return .admitted
        }
        switch admission {
        case .admitted: break
        case .stopping:
            close(fd)
            return
        case .full:
            logger.warning("client refused: too many clients", metadata: ["client": "\(client)", "limit": "\(maxClients)"])
            refused.refuse(fd, with: WyomingProtocolError.tooManyClients(maxClients).event.encoded())
            return
        }
        // A client that stops reading cannot block its thread for long: what it leaves unread
        // fills a small send buffer (the server's answers are a few KiB at most), and a write
        // that then waits 10 s fails.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var sendBuffer: Int32 = 64 * 1024
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sendBuffer, socklen_t(MemoryLayout<Int32>.size))
        connectionsDone.enter()
        let thread = Thread { [self] in
            WyomingConnection(
                input: fd, output: fd, place: place, client: client, models: models,
                configuration: configuration, wakeWords: wakeWords, limits: limits, logger: logger
            ).run()
            places.withLock { places in
                guard places != nil else { return }
                if places!.clients[fd] === place {
                    places!.clients[fd] = nil
                } else if place.displacedAfter != nil {
                    places!.leaving -= 1
                }
            }
            close(fd)
            connectionsDone.leave()
        }
        thread.name = "s4listen wyoming client"
        thread.start()
    }

    /// "127.0.0.1:40312", "[::1]:40312" or "unix".
    private static func peer(_ address: sockaddr_storage) -> String {
        var address = address
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST)), port = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        guard Int32(address.ss_family) == AF_INET || Int32(address.ss_family) == AF_INET6 else { return "unix" }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo(
                    $0, socklen_t(MemoryLayout<sockaddr_storage>.size), &host, socklen_t(host.count), &port,
                    socklen_t(port.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard status == 0 else { return "?" }
        let name = String(cString: host), service = String(cString: port)
        return name.contains(":") ? "[\(name)]:\(service)" : "\(name):\(service)"
    }
}

/// The model every new stream starts with, and a generation count that tells running streams a
/// reload has happened.
final class SharedModel: Sendable {
    private let state: Mutex<(model: S4Model, generation: Int)>

    init(_ model: S4Model) { state = Mutex((model, 0)) }

    var current: (model: S4Model, generation: Int) { state.withLock { $0 } }

    func replace(_ model: S4Model) { state.withLock { $0 = (model, $0.generation + 1) } }
}
