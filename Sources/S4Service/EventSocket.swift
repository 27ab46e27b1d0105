#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Event lines for local programs on a Unix stream socket: every connected client receives every
/// line from the moment it connects. Never blocks the capture loop: new clients are accepted and
/// lines sent without waiting, and a client that is gone or too slow to take a line is dropped.
///
/// The owner calls `close()` when it stops: the socket file must be gone by the time the process
/// exits, and a deinit is not run at exit while anything still holds the socket.
public final class EventSocket: Sendable {
    public let path: String
    private let listener: Int32
    /// The connected clients; nil once closed. Locked: lines come from the capture thread, the
    /// close from whichever task stops the service.
    private let clients = Mutex<[Int32]?>([])

    public init(path: String) throws(ServiceError) {
        self.path = path
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .socket(path: path, reason: "path is empty or too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .socket(path: path, reason: String(cString: strerror(errno))) }
        // A stale socket from an earlier run is replaced; any other file at the path is refused.
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else {
                Glibc.close(fd)
                throw .socket(path: path, reason: "exists and is not a socket")
            }
            unlink(path)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        // Any local user may read the events, whatever the daemon's umask.
        guard bound == 0, chmod(path, 0o666) == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw .socket(path: path, reason: reason)
        }
        listener = fd
    }

    deinit { close() }

    /// Disconnects every client, closes the listener and removes the socket file. Later calls,
    /// and lines broadcast after it, do nothing.
    public func close() {
        clients.withLock { clients in
            guard let open = clients else { return }
            open.forEach { _ = Glibc.close($0) }
            _ = Glibc.close(listener)
            unlink(path)
            clients = nil
        }
    }

    /// Sends one line (a newline is added) to every client.
    public func broadcast(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        clients.withLock { clients in
            guard var open = clients else { return }
            // The listener is non-blocking: accept returns −1 (EAGAIN) once no client is waiting.
            while case let client = accept(listener, nil, nil), client >= 0 {
                _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                open.append(client)
            }
            open.removeAll { client in
                let sent = bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent == bytes.count { return false }
                _ = Glibc.close(client)
                return true
            }
            clients = open
        }
    }
}
