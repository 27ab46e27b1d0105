#if canImport(Glibc)
import Glibc
#endif

/// Ending a connection so that the client reads what it was told last. Closing a socket whose
/// client's bytes are still unread sends a reset, and the client's system may then drop the
/// `error` event that says why before the client reads it; so the server first ends its own side
/// and reads and drops what still arrives.
enum GracefulClose {
    /// Reads and drops what is waiting, up to 64 KiB, without blocking; whether the client has
    /// closed its end (or the socket failed).
    static func drain(_ fd: Int32) -> Bool {
        var scratch = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<16 {
            let count = recv(fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
            if count > 0 { continue }
            return count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        }
        return false
    }

    /// Ends the server's side, then drops what arrives until the client closes or `linger` has
    /// passed. Blocks: for a client's own thread. The caller closes the socket.
    static func linger(_ fd: Int32, for linger: Duration) {
        shutdown(fd, Int32(SHUT_WR))
        let deadline = ContinuousClock.now + linger
        while case let left = deadline - .now, left > .zero {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32((left / .milliseconds(1)).rounded(.up))) >= 0 || errno == EINTR else { return }
            if poller.revents != 0 && drain(fd) { return }
        }
    }
}
