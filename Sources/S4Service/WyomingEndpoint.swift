import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where `s4listen serve` talks Wyoming: `tcp://HOST:PORT`, `unix://PATH` or `stdio://` (one
/// client on standard input and output), the URIs the reference servers take.
public enum WyomingEndpoint: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)
    case stdio

    public static let defaultURI = "tcp://127.0.0.1:10400"

    public init(uri: String) throws(ServiceError) {
        if uri == "stdio://" {
            self = .stdio
        } else if uri.hasPrefix("unix://") {
            let path = String(uri.dropFirst("unix://".count))
            guard !path.isEmpty else { throw .endpoint(uri: uri, reason: "no socket path") }
            self = .unix(path: path)
        } else if uri.hasPrefix("tcp://") {
            var rest = Substring(uri.dropFirst("tcp://".count))
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
                (1...65535).contains(port)
            else {
                throw .endpoint(uri: uri, reason: "expected tcp://HOST:PORT with a port from 1 to 65535")
            }
            var host = String(rest[..<colon])
            // [::1]:10400 is an IPv6 address with a port.
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw .endpoint(uri: uri, reason: "no host (use 127.0.0.1 for this machine only)") }
            self = .tcp(host: host, port: port)
        } else {
            throw .endpoint(uri: uri, reason: "expected tcp://HOST:PORT, unix://PATH or stdio://")
        }
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "tcp://[\(host)]:\(port)" : "tcp://\(host):\(port)"
        case .unix(let path): "unix://\(path)"
        case .stdio: "stdio://"
        }
    }

    /// A bound, listening socket for a network endpoint (not `.stdio`). A stale Unix socket file
    /// (nobody accepting) is replaced; a live one or any other file is refused.
    func listen(backlog: Int32 = 256) throws(ServiceError) -> Int32 {
        switch self {
        case .stdio:
            throw .endpoint(uri: description, reason: "standard input and output are not a listening socket")
        case .unix(let path):
            do {
                return try UnixListener.listen(path: path, backlog: backlog).fd
            } catch {
                throw .endpoint(uri: description, reason: error.reason)
            }
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
            var found: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &found)
            guard status == 0, let first = found else {
                throw .endpoint(uri: description, reason: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
            }
            defer { freeaddrinfo(found) }
            let fd = try open(first.pointee.ai_family)
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard Glibc.bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, Glibc.listen(fd, backlog) == 0 else {
                throw failure(closing: fd)
            }
            return fd
        }
    }

    /// The socket file to remove when the server stops.
    var socketPath: String? {
        if case .unix(let path) = self { return path }
        return nil
    }

    private func open(_ family: Int32) throws(ServiceError) -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .endpoint(uri: description, reason: String(cString: strerror(errno))) }
        return fd
    }

    private func failure(closing fd: Int32) -> ServiceError {
        let reason = String(cString: strerror(errno))
        close(fd)
        return .endpoint(uri: description, reason: reason)
    }
}
