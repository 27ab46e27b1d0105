import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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

    /// Takes the place away and wakes the client's thread: shutting the socket for reading ends
    /// the read it waits in, and its thread then tells the client why and closes.
    func displace() {
        state.withLock { $0.displacedAfter = .now - $0.lastEvent }
        shutdown(fd, Int32(SHUT_RD))
    }
}
