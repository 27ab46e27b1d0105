#if canImport(Glibc)
import Glibc
#endif

/// Model files read and written with errors that name the problem (a directory, a named pipe, a
/// device), as the system states them, rather than a generic "permission" or "error 256".
enum ModelFile {
    /// A model file far larger than any model (the bundled one is a few MB) is refused unread.
    static let largestBytes = 1 << 30

    /// The bytes of the regular file at `path`.
    static func read(_ path: String) throws(CommandFailure) -> [UInt8] {
        func failure(_ reason: String) -> CommandFailure { CommandFailure("cannot read model file \(path): \(reason)") }
        // Non-blocking, so that opening a named pipe cannot wait for a writer.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw failure(String(cString: strerror(errno))) }
        if let kind = kind(of: status) { throw failure("\(kind), not a model file") }
        guard Int(status.st_size) <= largestBytes else {
            throw failure("\(status.st_size) bytes, more than any model (at most \(largestBytes))")
        }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw failure(String(cString: strerror(errno))) }
            guard count > 0 else { throw failure("it shrank while being read (\(offset) of \(bytes.count) bytes)") }
            offset += count
        }
        return bytes
    }

    /// Writes `bytes` to `path`. A regular file (or a new one) is replaced whole: a temporary file
    /// beside it is renamed over it, so a service reloading it sees the old model or the new one,
    /// never half of one. Anything else — a named pipe, a device, a symbolic link — is written
    /// through, never replaced by a regular file; a directory is refused.
    static func write(_ bytes: [UInt8], to path: String) throws(CommandFailure) {
        func failure(_ reason: String) -> CommandFailure { CommandFailure("cannot write model file \(path): \(reason)") }
        var status = stat()
        let exists = lstat(path, &status) == 0
        if exists && status.st_mode & S_IFMT == S_IFDIR { throw failure("is a directory") }
        if exists && status.st_mode & S_IFMT != S_IFREG {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
            defer { close(fd) }
            if let reason = writeAll(bytes, to: fd) { throw failure(reason) }
            return
        }
        let temporary = "\(path).\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        let reason = writeAll(bytes, to: fd) ?? (fsync(fd) == 0 ? nil : String(cString: strerror(errno)))
        close(fd)
        if reason == nil && rename(temporary, path) == 0 { return }
        let renameReason = String(cString: strerror(errno))
        unlink(temporary)
        throw failure(reason ?? renameReason)
    }

    /// What a file that is not a regular file is, in words; nil for a regular file.
    private static func kind(of status: stat) -> String? {
        switch status.st_mode & S_IFMT {
        case S_IFREG: nil
        case S_IFDIR: "is a directory"
        case S_IFIFO: "is a named pipe"
        case S_IFCHR: "is a character device"
        case S_IFBLK: "is a block device"
        case S_IFSOCK: "is a socket"
        default: "is not a regular file"
        }
    }

    /// Writes everything; the reason it could not, nil when it did.
    private static func writeAll(_ bytes: [UInt8], to fd: Int32) -> String? {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return count == 0 ? "nothing written" : String(cString: strerror(errno)) }
            offset += count
        }
        return nil
    }
}
