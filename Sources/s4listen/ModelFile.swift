#if canImport(Glibc)
import Glibc
#endif

/// Model files read and written with errors that name the problem (a directory, a named pipe, a
/// device), as the system states them, rather than a generic "permission" or "error 256".
enum ModelFile {
    /// A model file far larger than any model (the bundled one is a few MB) is refused unread.
    static let largestBytes = 1 << 30

    /// The bytes of the regular file at `path`. Anything else is refused before it is opened
    /// (opening some devices acts on them), and checked again once open.
    static func read(_ path: String) throws(CommandFailure) -> [UInt8] {
        func failure(_ reason: String) -> CommandFailure { CommandFailure("cannot read model file \(path): \(reason)") }
        var status = stat()
        guard stat(path, &status) == 0 else { throw failure(String(cString: strerror(errno))) }
        if let kind = kind(of: status) { throw failure("\(kind), not a model file") }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(fd) }
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
    /// beside it, with the old file's mode and owner, is renamed over it, so a service reloading it
    /// sees the old model or the new one, never half of one; through a symbolic link, the file it
    /// names is the one replaced. Anything else — a named pipe, a device, a link to nothing yet —
    /// is written through, never replaced by a regular file; a directory is refused.
    static func write(_ bytes: [UInt8], to path: String) throws(CommandFailure) {
        func failure(_ reason: String) -> CommandFailure { CommandFailure("cannot write model file \(path): \(reason)") }
        var status = stat(), link = stat()
        let exists = stat(path, &status) == 0
        let dangling = !exists && lstat(path, &link) == 0 && link.st_mode & S_IFMT == S_IFLNK
        if exists && status.st_mode & S_IFMT == S_IFDIR { throw failure("is a directory") }
        if dangling || (exists && status.st_mode & S_IFMT != S_IFREG) {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0o644)
            guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
            defer { close(fd) }
            if let reason = writeAll(bytes, to: fd) { throw failure(reason) }
            return
        }
        // Through a symbolic link, the file it names is replaced (a link is never replaced).
        var target = path
        if exists {
            guard let resolved = realpath(path, nil) else { throw failure(String(cString: strerror(errno))) }
            target = String(cString: resolved)
            free(resolved)
        }
        var template = Array("\(target).XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let temporary = String(cString: template)
        if exists {
            _ = fchown(fd, status.st_uid, status.st_gid)
            _ = fchmod(fd, status.st_mode & 0o7777)
        } else {
            // What open(…, 0o644) would give a new file: the process's umask applies.
            let mask = umask(0)
            umask(mask)
            _ = fchmod(fd, 0o644 & ~mask)
        }
        let reason = writeAll(bytes, to: fd) ?? (fsync(fd) == 0 ? nil : String(cString: strerror(errno)))
        close(fd)
        if reason == nil && rename(temporary, target) == 0 { return }
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
