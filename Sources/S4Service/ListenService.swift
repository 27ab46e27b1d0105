import Dispatch
import Foundation
import Logging
import S4Audio
import S4Core
import S4Detection
import ServiceLifecycle
import Synchronization

/// The daemon: reads an audio source on a thread of its own, feeds the detector, writes one JSON
/// line per spoken command to standard output (and to the event socket, if any).
///
/// Lifecycle (systemd `Type=notify`): READY=1 once the model is loaded and the source is open;
/// WATCHDOG=1 from the capture loop; SIGHUP loads the model file again and swaps it in, keeping
/// the running model if the new file is refused; on SIGTERM/SIGINT (graceful shutdown), end of
/// input or a closed standard output it sends STOPPING=1 and returns.
public final class ListenService: Service, @unchecked Sendable {
    /// Loads (or reloads) the model; throws a readable error for a bad file.
    public typealias ModelLoader = ModelReloader.Loader

    private let source: AudioSource
    private let reloader: ModelReloader
    private let firstModel: S4Model
    private let detectorConfiguration: DetectorConfiguration
    private let formatter: EventFormatter
    private let output: EventOutput
    private let socket: EventSocket?
    private let notifier: SystemdNotifier
    private let logger: Logger
    /// Stop after this many samples (the input is treated as ending there).
    private let sampleLimit: Int?
    private let stopRequested = Atomic<Bool>(false)
    private let reloadRequested = Atomic<Bool>(false)
    /// Whether STOPPING=1 has gone out. Watchdog pings check it under the same lock: a ping from
    /// the capture thread never follows STOPPING=1 from the shutdown handler.
    private let stoppingSent = Mutex<Bool>(false)

    public init(
        source: AudioSource, model: S4Model, loadModel: @escaping ModelLoader,
        detectorConfiguration: DetectorConfiguration, socket: EventSocket?, notifier: SystemdNotifier, logger: Logger,
        output: EventOutput = .json, sampleLimit: Int? = nil
    ) {
        self.sampleLimit = sampleLimit
        self.source = source
        firstModel = model
        reloader = ModelReloader(load: loadModel, logger: logger, notifier: notifier)
        self.output = output
        self.detectorConfiguration = detectorConfiguration
        formatter = EventFormatter(source: source.description, sampleRate: source.sampleRate)
        self.socket = socket
        self.notifier = notifier
        self.logger = logger
    }

    /// Asks for a model reload at the next block (what SIGHUP does).
    public func requestReload() { reloadRequested.store(true, ordering: .relaxed) }

    public func run() async throws {
        let finished = OnceContinuation()
        let hangup = ModelReloader.onHangup { [weak self] in self?.requestReload() }
        defer { hangup.cancel() }

        defer { notifyStopping() }  // also when the capture loop fails
        notifier.notify("READY=1\nSTATUS=listening on \(source.description) at \(source.sampleRate) Hz")
        logger.notice("listening", metadata: ["source": "\(source.description)", "rate": "\(source.sampleRate)"])
        let thread = Thread { [self] in
            finished.resume(with: Result { try self.captureLoop() })
        }
        thread.name = "s4listen capture"
        thread.start()
        try await withGracefulShutdownHandler {
            try await finished.wait()
        } onGracefulShutdown: { [self] in
            // The loop sees the flag after its current read (a period for ALSA), decides any
            // utterance in progress and returns. A source that never delivers again (a silent
            // pipe) must not hold up the shutdown: the wait ends after one second regardless.
            stopRequested.store(true, ordering: .relaxed)
            notifyStopping()
            DispatchQueue.global().asyncAfter(deadline: .now() + 1) { finished.resume(with: .success(())) }
        }
    }

    private func notifyStopping() {
        stoppingSent.withLock { sent in
            if !sent { notifier.notify("STOPPING=1") }
            sent = true
        }
    }

    private func pingWatchdog() {
        stoppingSent.withLock { sent in
            if !sent { notifier.notify("WATCHDOG=1") }
        }
    }

    private func captureLoop() throws {
        let detector = KeywordDetector(
            model: firstModel, sampleRate: Double(source.sampleRate), configuration: detectorConfiguration)
        let loop = DetectionLoop(detector: detector) { [self] event throws(OutputError) in try emit(event) }
        var lastPing = ContinuousClock.now
        var overruns = 0
        defer {
            // Stopped by request: the utterance in progress is decided rather than dropped.
            if stopRequested.load(ordering: .relaxed) { _ = try? loop.finish() }
        }
        let ending = try loop.run(
            source: source, sampleLimit: sampleLimit, shouldStop: { stopRequested.load(ordering: .relaxed) },
            beforeRead: {
                // A new model takes over between utterances, so none is classified by two models.
                if reloadRequested.exchange(false, ordering: .relaxed), let next = reloader.reload() {
                    detector.replaceModel(next)
                }
                if source.overrunCount > overruns {
                    overruns = source.overrunCount
                    logger.warning(
                        "audio overrun: samples were lost (the capture fell behind)", metadata: ["overruns": "\(overruns)"])
                }
                if let interval = notifier.watchdogInterval, ContinuousClock.now - lastPing >= interval {
                    pingWatchdog()
                    lastPing = .now
                }
            })
        switch ending {
        case .sinkClosed: logger.notice("standard output closed; stopping")
        case .endOfInput: logger.notice("end of input")
        case .stopped: break
        }
    }

    /// Writes one event; false when standard output is a closed pipe, an error when it fails.
    private func emit(_ event: DetectionEvent) throws(OutputError) -> Bool {
        let line = formatter.line(event)
        socket?.broadcast(line)
        return try JSONLine.raw(output == .names ? event.label : line).emit()
    }
}

/// A continuation resumed by whichever comes first: the capture loop ending or a shutdown request.
final class OnceContinuation: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Error>?
    private var result: Result<Void, Error>?

    func resume(with result: Result<Void, Error>) {
        lock.lock()
        defer { lock.unlock() }
        guard self.result == nil else { return }
        self.result = result
        continuation?.resume(with: result)
        continuation = nil
    }

    func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            lock.lock()
            defer { lock.unlock() }
            if let result { continuation.resume(with: result) } else { self.continuation = continuation }
        }
    }
}
