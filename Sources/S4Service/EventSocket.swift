import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Event lines for local programs on a Unix stream socket: every connected client receives every
/// line from the moment it connects. A thread of its own accepts clients at any time, so a quiet
/// room never keeps a client waiting; lines are sent without blocking, each client with a queue of
/// at most `queueLimit` bytes: a client that stops reading is dropped (and logged) rather than
/// delaying the others or the audio.
///
/// A path where another process still accepts connections is refused; a stale socket file (its
/// process gone) is replaced. The owner calls `close()` when it stops: the socket file must be gone
/// by the time the process exits, and a deinit is not run at exit while anything still holds it.
public final class EventSocket: Sendable {
    public let path: String
    /// Bytes waiting for one client, beyond its socket buffer, before it is dropped (about a
    /// hundred event lines).
    public static let queueLimit = 32 * 1024
    /// Clients connected at once; more are refused, so that connections cannot take every
    /// descriptor the process has (the units' LimitNOFILE).
    public static let clientLimit = 256
    /// The kernel's send buffer per client, kept small so a client that stops reading is noticed
    /// after a bounded number of lines rather than after megabytes.
    static let sendBufferBytes: Int32 = 16 * 1024

    private struct Client {
        let fd: Int32
        var queue: [UInt8] = []
    }

    private let listener: Int32
    /// Written once by `close()` to wake the accept thread.
    private let wake: (read: Int32, write: Int32)
    /// The connected clients; nil once closed.
    private let clients = Mutex<[Client]?>([])
    /// The socket file this instance made (device, inode): only that one is removed at close.
    private let identity: (dev_t, ino_t)
    private let logger: Logger

    public init(path: String, logger: Logger) throws(ServiceError) {
        self.path = path
        self.logger = logger
        let fd: Int32
        do {
            (fd, identity) = try UnixListener.listen(path: path, nonBlocking: true, backlog: 128)
        } catch {
            throw .socket(path: path, reason: error.reason)
        }
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            unlink(path)
            throw .socket(path: path, reason: reason)
        }
        pipeEnds.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
        listener = fd
        wake = (pipeEnds[0], pipeEnds[1])
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "s4listen event socket"
        thread.start()
    }

    /// Accepts clients as they come until `close()`, and notices those that hang up when they do
    /// (not at the next line, which in a quiet room may be hours away); then closes the listener
    /// and the wake pipe. Out of descriptors, it waits rather than spinning (`DescriptorShortage`).
    private func acceptLoop() {
        var shortage = DescriptorShortage(what: "event socket")
        while true {
            let open = clients.withLock { $0?.map(\.fd) } ?? []
            let pause = shortage.wait.map { Int32(($0 / .milliseconds(1)).rounded(.up)) } ?? 0
            var fds = [
                pollfd(fd: pause > 0 ? -1 : listener, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
            ]
            fds += open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, nfds_t(fds.count), pause > 0 ? pause : -1) < 0 && errno != EINTR { break }
            if fds[1].revents != 0 { break }
            let woken = Set(zip(open, fds.dropFirst(2)).filter { $0.1.revents != 0 }.map(\.0))
            if !woken.isEmpty { dropHungUp(woken) }
            if fds[0].revents != 0 { acceptWaiting(&shortage) }
        }
        Glibc.close(listener)
        Glibc.close(wake.read)
        Glibc.close(wake.write)
    }

    /// Accepts every client waiting (up to `clientLimit` connected).
    private func acceptWaiting(_ shortage: inout DescriptorShortage) {
        // The listener is non-blocking: accept returns −1 (EAGAIN) once no client is waiting.
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                shortage.failed(errno, logger: logger)
                return
            }
            shortage.accepted(logger: logger)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            var size = Self.sendBufferBytes
            _ = setsockopt(client, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            let kept = clients.withLock { clients -> Bool in
                guard clients != nil, clients!.count < Self.clientLimit else { return false }
                clients!.append(Client(fd: client))
                return true
            }
            if !kept {
                logger.warning("event socket client refused: \(Self.clientLimit) clients connected")
                Glibc.close(client)
            }
        }
    }

    /// Closes those of the clients the poll woke that have hung up. Clients have nothing to say:
    /// what one sent is read and dropped. Under the lock and only for descriptors still in the
    /// list, since `broadcast` may have closed one meanwhile and its number been reused.
    private func dropHungUp(_ woken: Set<Int32>) {
        let gone = clients.withLock { clients -> Int in
            guard let open = clients else { return 0 }
            let hungUp = Set(open.map(\.fd).filter { woken.contains($0) && GracefulClose.drain($0) })
            hungUp.forEach { Glibc.close($0) }
            clients = open.filter { !hungUp.contains($0.fd) }
            return hungUp.count
        }
        if gone > 0 { logger.info("event socket client left", metadata: ["clients": "\(gone)"]) }
    }

    deinit { close() }

    /// Disconnects every client, stops accepting and removes the socket file. Later calls, and
    /// lines broadcast after it, do nothing.
    public func close() {
        clients.withLock { clients in
            guard let open = clients else { return }
            open.forEach { _ = Glibc.close($0.fd) }
            clients = nil
            var status = stat()
            if lstat(path, &status) == 0, status.st_dev == identity.0, status.st_ino == identity.1 { unlink(path) }
            var byte: UInt8 = 1
            _ = write(wake.write, &byte, 1)
        }
    }

    /// Queues one line (a newline is added) for every client and sends what each will take now.
    public func broadcast(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        clients.withLock { clients in
            guard let open = clients else { return }
            var kept: [Client] = []
            for var client in open {
                client.queue += bytes
                if let failure = Self.flush(&client) {
                    logger.info("event socket client left", metadata: ["reason": "\(failure)"])
                } else if client.queue.count > Self.queueLimit {
                    logger.warning(
                        "event socket client dropped: it does not read its events",
                        metadata: ["queued_bytes": "\(client.queue.count)"])
                } else {
                    kept.append(client)
                    continue
                }
                Glibc.close(client.fd)
            }
            clients = kept
        }
    }

    /// Sends as much of the client's queue as its socket takes without blocking; the reason the
    /// client is gone, if it is.
    private static func flush(_ client: inout Client) -> String? {
        while !client.queue.isEmpty {
            let sent = client.queue.withUnsafeBytes { send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 {
                client.queue.removeFirst(sent)
            } else if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                return nil
            } else if sent < 0 && errno == EINTR {
                continue
            } else {
                return sent == 0 ? "closed" : String(cString: strerror(errno))
            }
        }
        return nil
    }
}
