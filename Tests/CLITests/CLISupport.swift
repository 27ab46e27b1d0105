import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `s4listen` executable as a user would: arguments, environment, standard input;
/// JSON lines on standard output, messages on standard error, exit status or signal.
enum CLI {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The `s4listen` next to the test bundle, so that `--scratch-path` builds test their own
    /// binary; `.build/debug/s4listen` when the bundle's folder has none.
    static let binary: String = {
        var folders: [URL] = []
        if let executable = Bundle.main.executableURL { folders.append(executable.deletingLastPathComponent()) }
        folders.append(URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent())
        let candidates =
            folders.map { $0.appendingPathComponent("s4listen").path }
            + [packageRoot.appendingPathComponent(".build/debug/s4listen").path]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }()

    static let samples = ["yes", "stop"].map { packageRoot.appendingPathComponent("samples/\($0).flac").path }

    /// A folder of this test process's own (models, scenes, sockets).
    static let directory: URL = {
        // A test writing to a child that has gone must see EPIPE, not die of SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        // Folders left by earlier runs whose process is gone.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [] where name.hasPrefix("s4listen-cli-") {
            if let pid = Int32(name.dropFirst("s4listen-cli-".count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                try? FileManager.default.removeItem(atPath: "/tmp/" + name)
            }
        }
        let url = URL(fileURLWithPath: "/tmp").appendingPathComponent("s4listen-cli-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// A fresh path in `directory`.
    static func path(_ name: String) -> String {
        directory.appendingPathComponent("\(UUID().uuidString.prefix(8))-\(name)").path
    }

    /// A small untrained model written by the CLI itself (2 layers, width 8, state 8).
    static let model: String = {
        let path = directory.appendingPathComponent("tiny.safetensors").path
        let result = try! run(["random-model", "--size", "2x8x8", path])
        precondition(result.status == 0, "random-model failed: \(result.stderr)")
        return path
    }()

    struct Result {
        let status: Int32
        /// Ended by a signal (a crash, or a kill after a timeout) rather than by exit.
        let signaled: Bool
        let stdout: String
        let stderr: String

        var lines: [[String: Any]] { CLI.parseLines(stdout) }
        /// Exited (no signal) with this status.
        func exited(_ code: Int32) -> Bool { !signaled && status == code }
    }

    static func parseLines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").map { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                Issue.record("not a JSON object line: \(line)")
                return [:]
            }
            return object
        }
    }

    /// Runs to completion: `input` is written to standard input (then closed); no input gives
    /// /dev/null. A run that outlives `timeout` is killed and recorded as an issue.
    static func run(
        _ arguments: [String], input: Data? = nil, environment: [String: String] = [:],
        timeout: Double = 30
    ) throws -> Result {
        let child = try ChildProcess(arguments, environment: environment, hasInput: input != nil)
        let written = DispatchSemaphore(value: 0)
        if let input {
            let writer = Thread {
                child.write(input)
                child.closeInput()
                written.signal()
            }
            writer.start()
        }
        if !child.waitForExit(timeout: timeout) {
            Issue.record("s4listen \(arguments.joined(separator: " ")) still running after \(timeout) s; killed")
            child.signal(SIGKILL)
            _ = child.waitForExit(timeout: 5)
        }
        // Input the child did not read must meet EPIPE once it has gone, not block the writer.
        if input != nil, written.wait(timeout: .now() + 5) == .timedOut {
            Issue.record("writing standard input still blocked after s4listen ended")
        }
        return child.result()
    }
}

/// A running `s4listen`: its standard input is a pipe the test writes to (and may keep open), its
/// standard output and error are collected by threads as they arrive.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var out = Data()
    private var err = Data()
    private let inputPipe: Pipe?
    private var inputOpen: Bool
    /// Standard output's read end, when the test reads it itself (`collectsOutput: false`).
    let outputHandle: FileHandle
    private let readersDone = DispatchGroup()

    init(
        _ arguments: [String], environment: [String: String] = [:], hasInput: Bool = true,
        collectsOutput: Bool = true
    ) throws {
        _ = CLI.directory  // SIGPIPE ignored
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let outPipe = Pipe(), errPipe = Pipe()
        inputPipe = hasInput ? Pipe() : nil
        inputOpen = hasInput
        process.standardInput = inputPipe ?? FileHandle.nullDevice
        process.standardOutput = outPipe
        process.standardError = errPipe
        outputHandle = outPipe.fileHandleForReading
        try process.run()
        if collectsOutput { collect(outPipe.fileHandleForReading.fileDescriptor, isOutput: true) }
        collect(errPipe.fileHandleForReading.fileDescriptor, isOutput: false)
    }

    private func collect(_ fd: Int32, isOutput: Bool) {
        readersDone.enter()
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                lock.lock()
                if isOutput { out.append(contentsOf: buffer[0..<n]) } else { err.append(contentsOf: buffer[0..<n]) }
                lock.unlock()
            }
            readersDone.leave()
        }
        thread.start()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    var stdout: String { lock.withLock { String(decoding: out, as: UTF8.self) } }
    var stderr: String { lock.withLock { String(decoding: err, as: UTF8.self) } }
    /// The complete lines so far, parsed.
    var lines: [[String: Any]] {
        let text = stdout
        guard let cut = text.lastIndex(of: "\n") else { return [] }
        return CLI.parseLines(String(text[...cut]))
    }

    /// Writes all of `data` to standard input; false once the reader is gone (EPIPE) or it is closed.
    @discardableResult
    func write(_ data: Data) -> Bool {
        guard let fd = lock.withLock({ inputOpen ? inputPipe?.fileHandleForWriting.fileDescriptor : nil }) else { return false }
        return data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }

    func closeInput() {
        lock.withLock {
            guard inputOpen, let inputPipe else { return }
            inputOpen = false
            try? inputPipe.fileHandleForWriting.close()
        }
    }

    func signal(_ number: Int32) { _ = kill(pid, number) }

    /// Polls `condition` every 10 ms until it holds or `timeout` seconds pass.
    func wait(timeout: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    /// Waits for the process to end and its output to be read; false on timeout.
    func waitForExit(timeout: Double) -> Bool {
        guard wait(timeout: timeout, until: { !process.isRunning }) else { return false }
        _ = readersDone.wait(timeout: .now() + 5)
        return true
    }

    func result() -> CLI.Result {
        CLI.Result(
            status: process.isRunning ? -1 : process.terminationStatus,
            signaled: process.isRunning || process.terminationReason == .uncaughtSignal,
            stdout: stdout, stderr: stderr)
    }
}

/// Writes to a child's standard input from a thread of its own, in chunks paced in (roughly)
/// real time, until stopped or the child stops reading.
final class Feeder: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    /// Repeats `chunk` every `interval` seconds.
    init(_ child: ChildProcess, chunk: Data, interval: Double) {
        let thread = Thread { [self] in
            while !lock.withLock({ stopped }) && child.write(chunk) {
                usleep(UInt32(interval * 1e6))
            }
            done.signal()
        }
        thread.start()
    }

    func stop() {
        lock.withLock { stopped = true }
        _ = done.wait(timeout: .now() + 5)
    }
}

/// A Unix datagram socket standing in for systemd's $NOTIFY_SOCKET.
final class NotifySocket {
    let path: String
    private let fd: Int32
    private(set) var messages: [String] = []

    init() throws {
        path = CLI.path("notify.sock")
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        precondition(bytes.count < MemoryLayout.size(ofValue: address.sun_path))
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Every state line received so far (a datagram may carry several, e.g. READY=1 and STATUS=…).
    var states: [String] { messages.flatMap { $0.split(separator: "\n").map(String.init) } }

    /// Receives datagrams until `condition` holds on the states or `timeout` seconds pass.
    func receive(timeout: Double, until condition: ([String]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !condition(states) {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(min(left, 0.05) * 1000) + 1) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { messages.append(String(decoding: buffer[0..<n], as: UTF8.self)) }
        }
        return true
    }
}
