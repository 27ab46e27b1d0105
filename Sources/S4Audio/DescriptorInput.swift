#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file descriptor (pipe, FIFO, socket, file) the way a live stream needs: one `read(2)`
/// returns whatever has arrived instead of waiting for a full block or for EOF.
struct DescriptorInput {
    let fd: Int32
    let source: String

    /// Fails early on a descriptor that is closed or was never open, instead of at the first read.
    init(fd: Int32, source: String) throws(AudioSourceError) {
        var status = stat()
        guard fd >= 0, fstat(fd, &status) == 0 else {
            throw .cannotOpen(source: source, reason: "file descriptor \(fd): \(Self.errorText(errno))")
        }
        // A closed standard input can be taken over by the runtime's own descriptors (an eventfd
        // has no file type): that is not audio either.
        let type = status.st_mode & S_IFMT
        guard type != 0 else {
            throw .cannotOpen(source: source, reason: "file descriptor \(fd) is not open (closed, or not a stream)")
        }
        guard type != S_IFDIR else { throw .cannotOpen(source: source, reason: "is a directory, not an audio stream") }
        self.fd = fd
        self.source = source
    }

    /// One read: blocks until at least one byte is there, then returns what is available (at most
    /// `buffer.count`). Returns 0 at EOF, and also when the writer reset the connection: a daemon
    /// fed by a pipe treats a vanished producer as the end of the stream, not as a failure.
    func readSome(into buffer: UnsafeMutableRawBufferPointer) throws(AudioSourceError) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            let n = read(fd, base, buffer.count)
            if n >= 0 { return n }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                // A non-blocking descriptor (some shells hand those over): wait for data, then retry.
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&poller, 1, -1)
            case ECONNRESET, EPIPE:
                return 0
            case let code:
                throw .readFailed(source: source, reason: Self.errorText(code))
            }
        }
    }

    /// Reads until `buffer` is full or EOF (headers must be read whole); returns the byte count.
    func readFully(into buffer: UnsafeMutableRawBufferPointer) throws(AudioSourceError) -> Int {
        var total = 0
        while total < buffer.count {
            let n = try readSome(into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]))
            if n == 0 { break }
            total += n
        }
        return total
    }

    /// Reads exactly `count` bytes into a new array, or fewer if the stream ends first.
    func readBytes(_ count: Int) throws(AudioSourceError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = try bytes.withUnsafeMutableBufferPointer { buffer throws(AudioSourceError) in
            try readFully(into: UnsafeMutableRawBufferPointer(buffer))
        }
        return Array(bytes[0..<got])
    }

    /// Reads and drops `count` bytes (chunks a streaming reader does not need); false if EOF came first.
    func skip(_ count: Int) throws(AudioSourceError) -> Bool {
        var left = count
        while left > 0 {
            let step = Swift.min(left, 4096)
            guard try readBytes(step).count == step else { return false }
            left -= step
        }
        return true
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
}
