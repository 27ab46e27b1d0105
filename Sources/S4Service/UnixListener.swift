#if canImport(Glibc)
import Glibc
#endif

/// A listening Unix stream socket at a path, made one way for the event socket and the Wyoming
/// server: a stale socket file (nobody accepts there) is replaced; a live one, or a file that is
/// not a socket, is refused; the new file has mode 0666, so any local user may connect whatever
/// the daemon's umask.
enum UnixListener {
    /// Why the socket could not be made; the caller names the path or URI.
    struct Failure: Error {
        let reason: String
    }

    /// The listening descriptor (close-on-exec, non-blocking if asked) and the (device, inode) of
    /// the socket file it made: only that file is the owner's to remove.
    static func listen(path: String, nonBlocking: Bool = false, backlog: Int32) throws(Failure)
        -> (fd: Int32, identity: (dev_t, ino_t))
    {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Failure(reason: "socket path is empty or too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { throw Failure(reason: "exists and is not a socket") }
            guard !accepts(&address) else { throw Failure(reason: "another process is listening there (a second s4listen?)") }
            unlink(path)  // stale: nobody answers
        }
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = socket(AF_UNIX, type, 0)
        guard fd >= 0 else { throw Failure(reason: String(cString: strerror(errno))) }
        let bound = withSocketAddress(&address) { bind(fd, $0, $1) }
        guard bound == 0, chmod(path, 0o666) == 0, Glibc.listen(fd, backlog) == 0, lstat(path, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            if bound == 0 { unlink(path) }
            throw Failure(reason: reason)
        }
        return (fd, (status.st_dev, status.st_ino))
    }

    /// Whether something accepts connections at `address` now.
    private static func accepts(_ address: inout sockaddr_un) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        return withSocketAddress(&address) { connect(probe, $0, $1) } == 0
    }

    private static func withSocketAddress(_ address: inout sockaddr_un, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32)
        -> Int32
    {
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
