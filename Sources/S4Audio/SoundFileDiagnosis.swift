#if canImport(Glibc)
import Glibc
#endif

/// The one place that turns a file libsndfile cannot read into a message naming the problem:
/// libsndfile's own texts ("SF_INFO struct incomplete", "Format not recognised") say little about
/// a WAV with a sampling rate of 0 Hz, a directory or a FLAC cut short.
enum SoundFileDiagnosis {
    /// Refuses, before libsndfile sees it, what is not a regular file with content. A named pipe
    /// is refused rather than opened: without a writer, opening it would block silently.
    static func checkPath(_ path: String) throws(AudioSourceError) {
        var status = stat()
        guard stat(path, &status) == 0 else { throw .cannotOpen(source: path, reason: String(cString: strerror(errno))) }
        switch status.st_mode & S_IFMT {
        case S_IFDIR:
            throw .cannotOpen(source: path, reason: "is a directory, not an audio file")
        case S_IFIFO:
            throw .cannotOpen(
                source: path, reason: "is a named pipe, not a file: stream it with `s4listen listen --input \(path)`")
        case S_IFREG where status.st_size == 0:
            throw .noAudio(source: path)
        default:
            try checkMPEG(path)
        }
    }

    /// Refuses a file that starts like MP3 but holds no MPEG audio, before libmpg123 sees it.
    private static func checkMPEG(_ path: String) throws(AudioSourceError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return }  // libsndfile's open names the problem
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 4)
        let count = max(0, pread(fd, &head, 4, 0))
        guard MPEGFrameChain.startsLikeMP3(Array(head.prefix(count))), !MPEGFrameChain.isChained(fd: fd) else { return }
        throw .cannotOpen(
            source: path,
            reason: "not an audio format s4listen reads: it starts like MP3 (an ID3 tag or an MPEG frame sync) "
                + "but holds no MPEG audio frames")
    }

    /// What libsndfile's refusal `message` means for the bytes at `path`.
    static func explain(_ path: String, libsndfile message: String) -> AudioSourceError {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .cannotOpen(source: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let detail = "libsndfile: \(message)"
        guard let input = try? DescriptorInput(fd: fd, source: path), let magic = try? input.readBytes(4) else {
            return .cannotOpen(source: path, reason: detail)
        }
        if StreamingWAVHeader.isWAVMagic(magic) {
            // The streaming parser names what is wrong with the header.
            do {
                _ = try StreamingWAVHeader.read(from: input, magic: magic)
            } catch {
                return error
            }
            return .cannotOpen(source: path, reason: "damaged WAV file (\(detail))")
        }
        var status = stat()
        let size = fstat(fd, &status) == 0 ? Int(status.st_size) : 0
        switch magic {
        case Array("fLaC".utf8):
            return .cannotOpen(source: path, reason: "damaged or truncated FLAC file (\(size) bytes; \(detail))")
        case Array("OggS".utf8):
            return .cannotOpen(source: path, reason: "damaged or truncated Ogg file (\(size) bytes; \(detail))")
        case _ where magic.starts(with: Array("ID3".utf8)) || (magic.count >= 2 && magic[0] == 0xFF && magic[1] & 0xE0 == 0xE0):
            return .cannotOpen(source: path, reason: "MP3 data that could not be decoded (\(detail))")
        default:
            return .cannotOpen(source: path, reason: "not an audio format libsndfile reads (\(detail))")
        }
    }
}
