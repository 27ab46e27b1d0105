import Foundation
import Logging
import S4Core
import S4Detection

#if canImport(Glibc)
import Glibc
#endif

/// One Wyoming client, served on a thread of its own until it leaves: `describe` → `info`,
/// `detect` (the wake words it wants), `audio-start` / `audio-chunk` / `audio-stop` → one
/// `detection` per spoken command and `not-detected` at the end of a stream where none fired,
/// `ping` → `pong`. Other event types are ignored, as the protocol asks.
///
/// A client that breaks the protocol (a bad header, an oversized event, audio in a format the
/// detector does not take, a timestamp out of range, an event not complete within
/// `limits.eventSeconds` of its first byte) or that stays idle past `limits.idleSeconds` is sent an
/// `error` event, logged and disconnected; nothing it sends can affect another client.
public final class WyomingConnection {
    private let input: Int32
    private let output: Int32
    private let isSocket: Bool
    private let models: SharedModel
    private let configuration: DetectorConfiguration
    private let limits: WyomingLimits
    /// The client's place in a server with room for several; nil for the stdio client.
    private let place: ClientPlace?
    private var logger: Logger

    /// Names from the last `detect`, for the next stream.
    private var names: Set<String> = []
    /// The words a stream reports when `detect` named none (empty: every command).
    private let wakeWords: Set<String>
    private var stream: WyomingAudioStream?
    /// The generation of the model the stream's detector runs.
    private var generation = 0

    init(
        input: Int32, output: Int32, place: ClientPlace?, client: String, models: SharedModel,
        configuration: DetectorConfiguration, wakeWords: Set<String>, limits: WyomingLimits, logger: Logger
    ) {
        self.input = input
        self.wakeWords = wakeWords
        self.output = output
        self.place = place
        isSocket = place != nil
        self.models = models
        self.configuration = configuration
        self.limits = limits
        self.logger = logger
        self.logger[metadataKey: "client"] = "\(client)"
    }

    /// One client on a pair of descriptors that are not sockets (standard input and output, a
    /// pipe): the `stdio://` server and the fuzz target.
    public convenience init(
        input: Int32, output: Int32, client: String, model: S4Model, configuration: DetectorConfiguration,
        limits: WyomingLimits, logger: Logger
    ) {
        self.init(
            input: input, output: output, place: nil, client: client, models: SharedModel(model),
            configuration: configuration, wakeWords: [], limits: limits, logger: logger)
    }

    /// Serves the client until it leaves or is refused; the reason it was refused, nil when it left.
    /// The descriptors stay open (the owner's).
    @discardableResult
    public func run() -> WyomingProtocolError? {
        logger.info("client connected")
        var decoder = WyomingEventDecoder(limits: limits)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        var lastEvent = ContinuousClock.now
        var eventStart = ContinuousClock.now
        do throws(WyomingProtocolError) {
            while true {
                let deadline: (ContinuousClock.Instant, WyomingProtocolError)? =
                    decoder.isMidEvent
                    ? (eventStart + .seconds(limits.eventSeconds), .eventTimeout(seconds: limits.eventSeconds))
                    : limits.idleSeconds.map { (lastEvent + .seconds($0), .idle(seconds: $0)) }
                let count = try read(into: buffer, before: deadline)
                if let idle = place?.displacedAfter { throw .displaced(seconds: idle / .seconds(1)) }
                if count == 0 {
                    if decoder.isMidEvent { throw .truncated }
                    break
                }
                let wasMidEvent = decoder.isMidEvent
                let events = try decoder.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                // A client whose events the server is busy with is not idle (nor displaceable).
                if !events.isEmpty { place?.eventCompleted() }
                for event in events { try handle(event) }
                // Times run from when the server is done with what arrived (the detector's work
                // is the server's time, not the client's).
                if !events.isEmpty {
                    lastEvent = .now
                    place?.eventCompleted()
                }
                // An event that began in this read: its time runs from now.
                if decoder.isMidEvent && (!wasMidEvent || !events.isEmpty) { eventStart = .now }
            }
            logger.info("client left")
            return nil
        } catch {
            logger.warning("client disconnected: \(error)", metadata: ["code": "\(error.code)"])
            switch error {
            case .truncated, .readFailed, .writeFailed: break
            default:
                try? send(error.event)
                if isSocket { GracefulClose.linger(input, for: .seconds(1)) }
            }
            return error
        }
    }

    private func handle(_ event: WyomingEvent) throws(WyomingProtocolError) {
        switch event.type {
        case "describe":
            try send(WyomingInfo.event(for: models.current.model))
        case "ping":
            try send(WyomingEvent(type: "pong", data: ["text": event.data["text"] ?? NSNull()]))
        case "detect":
            try detect(event)
        case "audio-start":
            try startStream(event)
        case "audio-chunk":
            // A chunk without audio-start starts a stream in its own format.
            if stream == nil { try startStream(event) }
            try chunk(event)
        case "audio-stop":
            try stopStream()
        default:
            logger.debug("event ignored", metadata: ["type": "\(event.type)"])
        }
    }

    private func detect(_ event: WyomingEvent) throws(WyomingProtocolError) {
        let requested = event.data["names"]
        guard requested == nil || requested is NSNull || requested is [Any] else {
            throw .badEvent("detect: \"names\" must be a list of wake word names")
        }
        names = Set(((requested as? [Any]) ?? []).compactMap { ($0 as? String)?.lowercased() })
        let known = Set(WyomingInfo.commands(of: models.current.model))
        let unknown = names.subtracting(known)
        guard !unknown.isEmpty else { return }
        logger.warning(
            "client asked for wake words the model does not have",
            metadata: ["unknown": "\(unknown.sorted())", "known": "\(known.sorted())"])
        if unknown == names { try send(WyomingProtocolError.unknownWakeWords(unknown.sorted(), known: known.sorted()).event) }
    }

    private func startStream(_ event: WyomingEvent) throws(WyomingProtocolError) {
        let (model, generation) = models.current
        let next = try WyomingAudioStream(
            event, names: names.isEmpty ? wakeWords : names, model: model, configuration: configuration)
        stream = next
        self.generation = generation
        logger.info(
            "audio stream started",
            metadata: [
                "rate": "\(next.rate)", "width": "\(next.pcm.width)", "channels": "\(next.pcm.channels)",
            ])
    }

    private func chunk(_ event: WyomingEvent) throws(WyomingProtocolError) {
        guard let stream else { return }
        guard stream.matches(event) else {
            throw .badEvent(
                "audio-chunk format (rate \(event.data["rate"] ?? "none"), width \(event.data["width"] ?? "none"), "
                    + "channels \(event.data["channels"] ?? "none")) differs from the stream's (\(stream.rate) Hz, width "
                    + "\(stream.pcm.width), \(stream.pcm.channels) channels)")
        }
        // A reloaded model takes over between utterances (the detector waits for the one in progress).
        let current = models.current
        if current.generation != generation {
            stream.detector.replaceModel(current.model)
            generation = current.generation
        }
        try report(stream.process(event.payload), of: stream)
    }

    private func stopStream() throws(WyomingProtocolError) {
        defer {
            stream = nil
            names = []  // a detect request covers the stream that follows it
        }
        guard let stream else {
            try send(WyomingEvent(type: "not-detected"))
            return
        }
        try report(stream.finish(), of: stream)
        logger.info("audio stream stopped", metadata: ["seconds": "\(Double(stream.frames) / Double(stream.rate))"])
        if !stream.hasDetections { try send(WyomingEvent(type: "not-detected")) }
    }

    private func report(_ events: [DetectionEvent], of stream: WyomingAudioStream) throws(WyomingProtocolError) {
        for event in events where stream.wants(event.label) {
            let timestamp = stream.timestamp(of: event)
            logger.notice(
                "detection",
                metadata: [
                    "name": "\(event.label)", "score": "\(event.score)", "timestamp_ms": "\(timestamp)", "rate": "\(stream.rate)",
                ])
            stream.hasDetections = true
            try send(WyomingEvent(type: "detection", data: ["name": event.label, "timestamp": timestamp, "speaker": NSNull()]))
        }
    }

    /// How often a client's thread looks whether its place was given to a newcomer.
    static let checkEvery = Duration.milliseconds(250)

    /// One read: blocks until bytes arrive, 0 at the end (or when the place was taken: the caller
    /// looks); past `deadline`, its error.
    private func read(
        into buffer: UnsafeMutableRawBufferPointer, before deadline: (ContinuousClock.Instant, WyomingProtocolError)?
    ) throws(WyomingProtocolError) -> Int {
        while true {
            if place?.displacedAfter != nil { return 0 }
            var wait = place == nil ? Duration.seconds(3600) : Self.checkEvery
            if let (instant, error) = deadline {
                let left = instant - .now
                if left <= .zero { throw error }
                wait = min(wait, left)
            }
            let timeout = Int32((wait / .milliseconds(1)).rounded(.up))
            var poller = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .readFailed(String(cString: strerror(errno)))
            }
            if ready == 0 { continue }
            let count = Glibc.read(input, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            switch errno {
            case EINTR, EAGAIN: continue
            case ECONNRESET: return 0
            case let code: throw .readFailed(String(cString: strerror(code)))
            }
        }
    }

    private func send(_ event: WyomingEvent) throws(WyomingProtocolError) {
        let bytes = event.encoded()
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                isSocket
                    ? Glibc.send(output, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                    : Glibc.write(output, raw.baseAddress! + offset, raw.count - offset)
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw .writeFailed(errno: errno)
            }
            offset += sent
        }
    }
}
