import Foundation
import Glibc
import Testing

/// `listen --socket PATH`: a local client receives the same event lines as standard output, and a
/// path that holds anything but a socket is refused and left alone.
@Suite struct EventSocketTests {
    /// Connects a Unix stream client to `path`.
    static func connectClient(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected == 0 { return fd }
        close(fd)
        return nil
    }

    @Test func clientsGetTheEventLines() throws {
        let path = CLI.path("events.sock")
        let notify = try NotifySocket()
        let child = try ChildProcess(
            [
                "listen", "--model", CLI.model, "--all", "--input", "-", "--format", "s16le",
                "--rate", "16000", "--socket", path,
            ],
            environment: ["NOTIFY_SOCKET": notify.path])
        defer {
            child.closeInput()
            if child.isRunning { child.signal(SIGKILL) }
        }
        // READY=1 comes after the socket is bound.
        #expect(notify.receive(timeout: 15) { $0.contains("READY=1") }, "\(child.stderr)")
        let client = try #require(Self.connectClient(path))
        defer { close(client) }
        #expect(child.write(AudioScene.bursts(rate: 16000).s16le))
        child.closeInput()
        #expect(child.waitForExit(timeout: 15))
        let result = child.result()
        #expect(result.exited(0), "\(result.stderr)")
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while case let n = read(client, &buffer, buffer.count), n > 0 { received.append(contentsOf: buffer[0..<n]) }
        let socketLines = String(decoding: received, as: UTF8.self).split(separator: "\n").map(String.init)
        let stdoutLines = result.stdout.split(separator: "\n").map(String.init)
        #expect(stdoutLines.count == 3)
        #expect(socketLines == stdoutLines)
        // The daemon removes its socket when it ends.
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aPathThatIsNotASocketIsRefused() throws {
        let path = CLI.path("not-a-socket.txt")
        try "keep me\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try CLI.run(
            [
                "listen", "--model", CLI.model, "--input", "-", "--format", "s16le", "--rate", "16000",
                "--socket", path,
            ], input: Data())
        #expect(result.exited(1), "\(result.stderr)")
        #expect(result.stderr.contains("event socket \(path): exists and is not a socket"), "\(result.stderr)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me\n")
    }
}
