#if canImport(Glibc)
import Glibc
#endif

/// Clients the Wyoming server refused, on their way out: each is sent its `error` event and the
/// end of the stream, then what it still sends is read and dropped until it closes or `linger`
/// has passed. Closing at once with its bytes unread would reset the connection, and the client
/// would lose the event that says why. Served by the accept loop's poll; at most `capacity` wait.
struct RefusedClients {
    static let capacity = 256
    static let linger = Duration.seconds(2)

    private var waiting: [(fd: Int32, until: ContinuousClock.Instant)] = []

    var isEmpty: Bool { waiting.isEmpty }

    /// One poll entry for each waiting client, in order (what `serve` is given back).
    var pollers: [pollfd] { waiting.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) } }

    mutating func refuse(_ fd: Int32, with event: [UInt8]) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = GracefulClose.drain(fd)
        _ = event.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        shutdown(fd, Int32(SHUT_WR))
        if waiting.count >= Self.capacity { close(waiting.removeFirst().fd) }
        waiting.append((fd, .now + Self.linger))
    }

    /// Drops what the readable ones sent; closes those that closed their end or waited long enough.
    mutating func serve(_ pollers: ArraySlice<pollfd>) {
        let now = ContinuousClock.now
        waiting = zip(waiting, pollers).compactMap { entry, poller in
            let ended = poller.revents != 0 && GracefulClose.drain(entry.fd)
            if ended || now >= entry.until {
                close(entry.fd)
                return nil
            }
            return entry
        }
    }

    mutating func closeAll() {
        waiting.forEach { close($0.fd) }
        waiting = []
    }
}
