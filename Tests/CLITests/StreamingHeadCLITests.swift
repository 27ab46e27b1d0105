import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `listen` with a model whose head streams (`random-model --streaming-head`): one state through
/// the whole stream, so its memory stays where it was after the first seconds.
@Suite struct StreamingHeadCLITests {
    static func residentBytes(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// An hour of audio at 8 kHz through a pipe: resident memory after it is within 1 MiB of what
    /// it was after the first ten seconds.
    @Test func memoryIsFlatOverAnHour() throws {
        let model = CLI.path("streaming.safetensors")
        let made = try CLI.run([
            "random-model", "--size", "1x8x8", "--bank", "--kernel", "diag", "--frames", "2x16x8", "--streaming-head", model,
        ])
        #expect(made.exited(0), "\(made.stderr)")
        let child = try ChildProcess(
            ["listen", "--model", model, "--input", "-", "--format", "s16le", "--rate", "8000", "--threshold", "0"])
        defer { if child.isRunning { child.signal(SIGKILL) } }
        let tenSeconds = AudioScene.bursts(rate: 8000, seconds: 10, onsets: [1, 4, 7]).s16le
        let minute = (0..<6).reduce(Data()) { data, _ in data + tenSeconds }
        #expect(child.write(tenSeconds))
        #expect(child.wait(timeout: 15) { child.stderr.contains("listening") })
        usleep(300_000)
        let before = Self.residentBytes(child.pid)
        for _ in 0..<60 { #expect(child.write(minute)) }
        // Measured while it runs: what is left in the pipe is a few seconds of audio.
        usleep(500_000)
        let after = Self.residentBytes(child.pid)
        #expect(child.isRunning && before > 0 && after > 0, "\(before) \(after)")
        #expect(after - before < 1 << 20, "resident memory \(before) → \(after) bytes")
        child.closeInput()
        #expect(child.wait(timeout: 60) { child.stderr.contains("end of input") }, "\(child.stderr)")
        #expect(child.stdout.contains("\"type\":\"detection\""), "the events were written")
        #expect(child.waitForExit(timeout: 10))
    }
}
