import Foundation

/// Writes bytes into a pipe from a background thread, in pieces with pauses between them, the way a
/// live producer delivers audio; piece boundaries fall on odd byte offsets, inside samples.
enum PipeFeeder {
    /// A writer that died mid-stream must not kill the test process with SIGPIPE.
    private static let ignoreSIGPIPE: Void = {
        signal(SIGPIPE, SIG_IGN); return ()
    }()

    /// Starts the writer and returns the read end. With a `gate`, the writer stops after the first
    /// piece until the reader opens the gate (or 5 s pass, which the gate records).
    static func start(_ bytes: [UInt8], pieces: Int = 7, pause: TimeInterval = 0.003, gate: Gate? = nil) -> Int32 {
        _ = ignoreSIGPIPE
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0)
        let writeEnd = fds[1]
        let cuts = Set((1..<max(pieces, 1)).map { (($0 * bytes.count / pieces) | 1) }).filter { $0 < bytes.count }.sorted()
        let bounds = [0] + cuts + [bytes.count]
        Thread.detachNewThread {
            defer { close(writeEnd) }
            for (index, (start, end)) in zip(bounds, bounds.dropFirst()).enumerated() {
                if index == 1, let gate { gate.waitForReader() }
                if index > 0, pause > 0 { Thread.sleep(forTimeInterval: pause) }
                guard writeAll(writeEnd, bytes[start..<end]) else { return }
            }
        }
        return fds[0]
    }

    /// Writes a slice completely; false when the reader has gone.
    static func writeAll(_ fd: Int32, _ slice: ArraySlice<UInt8>) -> Bool {
        slice.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
    }
}

/// Lets a test prove a read returned before the writer sent the rest of the stream.
final class Gate: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var expired = false

    func open() { semaphore.signal() }

    func waitForReader() {
        if semaphore.wait(timeout: .now() + 5) == .timedOut {
            lock.withLock { expired = true }
        }
    }

    /// True when the writer gave up waiting: the reader was blocked waiting for more data.
    var timedOut: Bool { lock.withLock { expired } }
}
