import Synchronization

/// A connected Wyoming client's place in the server: when it last completed an event, and whether
/// the server has given its place to a newcomer. Shared by the client's thread (which records
/// events and sees the displacement) and the accept loop (which chooses whom to displace).
final class ClientPlace: Sendable {
    let fd: Int32
    private let state: Mutex<(lastEvent: ContinuousClock.Instant, displacedAfter: Duration?)>

    init(fd: Int32) {
        self.fd = fd
        state = Mutex((.now, nil))
    }

    func eventCompleted() { state.withLock { $0.lastEvent = .now } }

    /// How long since the client last completed an event (or connected).
    var idle: Duration { state.withLock { .now - $0.lastEvent } }

    /// How long the client had been idle when it was displaced; nil while it keeps its place.
    var displacedAfter: Duration? { state.withLock { $0.displacedAfter } }

    /// Takes the place away. The client's thread sees it within `WyomingConnection.checkEvery`
    /// and tells the client why before it closes (the socket is left whole so that the close
    /// can be graceful).
    func displace() {
        state.withLock { $0.displacedAfter = .now - $0.lastEvent }
    }
}
