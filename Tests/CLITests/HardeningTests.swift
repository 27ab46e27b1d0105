import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a demanding operator tries: absurd arguments, models that compute NaN, output that cannot
/// be written, socket clients that never read, a second instance, and files that are not audio.
/// Each fails with a clear message and an exit status, never a crash or a silent loss.
@Suite(.serialized) struct HardeningTests {
    /// Runs `s4listen` through the shell, for redirections a test cannot make otherwise.
    static func shell(_ arguments: String, timeout: Double = 30) throws -> CLI.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec \"$S4LISTEN\" \(arguments)"]
        process.environment = ProcessInfo.processInfo.environment.merging(["S4LISTEN": CLI.binary]) { $1 }
        let errPipe = Pipe()
        process.standardError = errPipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            Issue.record("still running after \(timeout) s: \(arguments)")
            process.terminate()
        }
        process.waitUntilExit()
        let stderr = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return CLI.Result(
            status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
            stdout: "", stderr: stderr)
    }

    /// `CLI.model` with its `s4` metadata edited.
    static func model(editing edit: (inout [String: Any]) -> Void) throws -> String {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: CLI.model)))
        let length = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        var header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
        var metadata = header["__metadata__"] as! [String: String]
        var object = try JSONSerialization.jsonObject(with: Data(metadata["s4"]!.utf8)) as! [String: Any]
        edit(&object)
        metadata["s4"] = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        header["__metadata__"] = metadata
        let json = [UInt8](try JSONSerialization.data(withJSONObject: header))
        let path = CLI.path("edited.safetensors")
        let out = (0..<8).map { UInt8((json.count >> (8 * $0)) & 0xff) } + json + bytes[(8 + length)...]
        try Data(out).write(to: URL(fileURLWithPath: path))
        return path
    }

    // MARK: 1. Arguments

    @Test(arguments: ["1e15", "-1", "nan", "0"])
    func absurdSecondsAreAUsageError(value: String) throws {
        let result = try CLI.run(["listen", "--model", CLI.model, "--input", CLI.samples[0], "--seconds", value])
        #expect(result.exited(64), "status \(result.status), signaled \(result.signaled)")
        #expect(result.stderr.contains("--seconds must be a positive number of seconds, at most 1e9"), "\(result.stderr)")
    }

    // MARK: 2. Models that compute only NaN

    @Test func aModelThatComputesNaNIsRefused() throws {
        let bad = try Self.model { $0["input_std"] = 1e-300 }
        let result = try CLI.run(["classify", "--model", bad, CLI.samples[0]])
        #expect(result.exited(1))
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("\(bad): model computes NaN or infinity"), "\(result.stderr)")
    }

    @Test func aRunningServiceKeepsItsModelWhenTheNewOneComputesNaN() throws {
        let path = CLI.path("reload.safetensors")
        try FileManager.default.copyItem(atPath: CLI.model, toPath: path)
        let child = try ChildProcess(["listen", "--model", path, "--all", "--input", "-", "--format", "s16le", "--rate", "16000"])
        defer {
            child.closeInput()
            if child.isRunning { child.signal(SIGKILL) }
        }
        #expect(child.wait(timeout: 15) { child.stderr.contains("listening") }, "\(child.stderr)")
        let bad = try Self.model { $0["input_std"] = 1e-300 }
        #expect(rename(bad, path) == 0)
        child.signal(SIGHUP)
        let quiet = AudioScene.noise(rate: 16000, seconds: 0.02).s16le
        #expect(
            child.wait(timeout: 10) {
                _ = child.write(quiet); return child.stderr.contains("reload refused")
            }, "\(child.stderr)")
        #expect(child.stderr.contains("model computes NaN or infinity"), "\(child.stderr)")
        // Still deciding with the old model: a burst gives an event.
        #expect(child.write(AudioScene.bursts(rate: 16000, seconds: 1.6, onsets: [0.3]).s16le))
        #expect(
            child.wait(timeout: 10) {
                _ = child.write(quiet); return !child.lines.isEmpty
            }, "\(child.stderr)")
        child.signal(SIGTERM)
        #expect(child.waitForExit(timeout: 5))
        #expect(child.result().exited(0), "\(child.stderr)")
    }

    // MARK: 3. Output that cannot be written

    @Test(arguments: [
        "classify --model MODEL SAMPLE", "info MODEL", "listen --model MODEL --all --input SCENE",
        "bench --random 1x8x8 --seconds 0.05", "classify --help", "--help",
        "serve --model MODEL --uri stdio:// <DESCRIBE",
    ])
    func aWriteErrorIsAnError(command: String) throws {
        let scene = CLI.path("scene.wav")
        try AudioScene.bursts(rate: 16000).wav().write(to: URL(fileURLWithPath: scene))
        let describe = CLI.path("describe.jsonl")
        try Data("{\"type\":\"describe\"}\n".utf8).write(to: URL(fileURLWithPath: describe))
        let arguments = command.replacingOccurrences(of: "MODEL", with: CLI.model)
            .replacingOccurrences(of: "SAMPLE", with: CLI.samples[0]).replacingOccurrences(of: "SCENE", with: scene)
            .replacingOccurrences(of: "DESCRIBE", with: describe)
        let result = try Self.shell("\(arguments) >/dev/full")
        #expect(result.exited(1), "\(command): status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("cannot write to standard output: No space left on device"), "\(result.stderr)")
    }

    // MARK: 4 and 5. The event socket

    /// Periodic tone bursts: one utterance every 0.8 s.
    static func manyBursts(count: Int) -> Data {
        let rate = 16000, period = 12800, burst = 4800
        var samples = [Int16](repeating: 0, count: count * period)
        for i in samples.indices {
            let inBurst = i % period >= 1600 && i % period < 1600 + burst
            let tone = inBurst ? 0.2 * sin(2 * Double.pi * 330 * Double(i) / Double(rate)) : 0
            samples[i] = Int16((tone + 0.003 * Double((i * 7919) % 13 - 6) / 6) * 32767)
        }
        return samples.withUnsafeBytes { Data($0) }
    }

    /// Hundreds of connects while a stream runs fast, a client that never reads: every connect is
    /// accepted, the sleeper is dropped with a log line, and the readers get every line.
    @Test func socketClientsAreAcceptedAnyTimeAndASleeperIsDropped() throws {
        let path = CLI.path("stress.sock")
        let notify = try NotifySocket()
        let child = try ChildProcess(
            [
                "listen", "--model", CLI.model, "--all", "--input", "-", "--format", "s16le",
                "--rate", "16000", "--socket", path,
            ], environment: ["NOTIFY_SOCKET": notify.path])
        defer {
            child.closeInput()
            if child.isRunning { child.signal(SIGKILL) }
        }
        #expect(notify.receive(timeout: 15) { $0.contains("READY=1") }, "\(child.stderr)")
        // A quiet room: no event has been sent, yet clients connect at once.
        let sleeper = try #require(EventSocketTests.connectClient(path))
        defer { close(sleeper) }
        let readers = try (0..<3).map { _ in try #require(EventSocketTests.connectClient(path)) }
        defer { readers.forEach { close($0) } }
        let received = readers.map { reader in
            let box = ReceivedBytes()
            Thread {
                var buffer = [UInt8](repeating: 0, count: 65536)
                while case let n = read(reader, &buffer, buffer.count), n > 0 { box.append(buffer[0..<n]) }
            }.start()
            return box
        }
        let writer = Thread {
            _ = child.write(Self.manyBursts(count: 400)); child.closeInput()
        }
        writer.start()
        var refused = 0
        for _ in 0..<300 {
            if let fd = EventSocketTests.connectClient(path) { close(fd) } else { refused += 1 }
        }
        #expect(refused == 0, "\(refused) of 300 connects refused while streaming")
        #expect(child.waitForExit(timeout: 60))
        let result = child.result()
        #expect(result.exited(0), "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count > 300, "only \(lines.count) events")
        #expect(result.stderr.contains("event socket client dropped: it does not read its events"), "\(result.stderr)")
        usleep(200_000)
        for box in received {
            #expect(String(decoding: box.bytes, as: UTF8.self).split(separator: "\n").map(String.init) == lines)
        }
    }

    @Test func aSecondInstanceCannotTakeALiveSocket() throws {
        let path = CLI.path("shared.sock")
        let notify = try NotifySocket()
        let first = try ChildProcess(
            [
                "listen", "--model", CLI.model, "--input", "-", "--format", "s16le", "--rate", "16000",
                "--socket", path,
            ], environment: ["NOTIFY_SOCKET": notify.path])
        defer {
            first.closeInput()
            if first.isRunning { first.signal(SIGKILL) }
        }
        #expect(notify.receive(timeout: 15) { $0.contains("READY=1") }, "\(first.stderr)")
        let second = try CLI.run(
            [
                "listen", "--model", CLI.model, "--input", "-", "--format", "s16le", "--rate", "16000",
                "--socket", path,
            ], input: Data())
        #expect(second.exited(1))
        #expect(second.stderr.contains("event socket \(path): another process is listening there"), "\(second.stderr)")
        // The first still answers there.
        let client = try #require(EventSocketTests.connectClient(path))
        close(client)
        // Once it is killed, its stale file is replaced by the next instance.
        first.signal(SIGKILL)
        #expect(first.waitForExit(timeout: 5))
        #expect(FileManager.default.fileExists(atPath: path))
        let third = try CLI.run(
            [
                "listen", "--model", CLI.model, "--input", "-", "--format", "s16le", "--rate", "16000",
                "--socket", path,
            ], input: AudioScene.noise(rate: 16000, seconds: 0.2).s16le)
        #expect(third.exited(0), "\(third.stderr)")
    }

    // MARK: 6. Clear errors

    /// A 16-bit mono WAV header with the given rate and a chunk of the given id and declared size
    /// before 3200 bytes of audio.
    static func wav(rate: UInt32, chunk: String = "data", declaring size: UInt32 = 3200) -> Data {
        var header = Data("RIFF".utf8)
        func put32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        func put16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        put32(36 + 3200)
        header.append(contentsOf: Array("WAVEfmt ".utf8))
        put32(16); put16(1); put16(1); put32(rate); put32(rate &* 2); put16(2); put16(16)
        header.append(contentsOf: Array(chunk.utf8)); put32(size)
        return header + Data(count: 3200)
    }

    @Test func unreadableFilesAreNamedClearly() throws {
        func write(_ data: Data, _ name: String) throws -> String {
            let path = CLI.path(name)
            try data.write(to: URL(fileURLWithPath: path))
            return path
        }
        let flac = try Data(contentsOf: URL(fileURLWithPath: CLI.samples[0]))
        let cases: [(String, String)] = [
            (try write(Self.wav(rate: 0), "rate0.wav"), "sampling rate 0 Hz is outside 1000…384000 Hz"),
            (try write(Self.wav(rate: 4_000_000_000), "rate4g.wav"), "sampling rate 4000000000 Hz is outside"),
            (CLI.directory.path, "is a directory, not an audio file"),
            (try write(flac.prefix(20), "cut.flac"), "damaged or truncated FLAC file (20 bytes"),
            (
                try write(Data([0x49, 0x44, 0x33, 3, 0, 0, 0, 0, 0, 0]) + Data(repeating: 0xFF, count: 600), "fake.mp3"),
                "not an audio format s4listen reads: it starts like MP3 (an ID3 tag or an MPEG frame sync) but holds no MPEG audio frames"
            ),
            // One valid MPEG-1 layer III frame header (417 bytes), then bytes that are no frame:
            // libmpg123 would print its "Illegal Audio-MPEG-Header" notes on this one.
            (
                try write(
                    Data([0xFF, 0xFB, 0x90, 0x64]) + Data((0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }),
                    "sync.mp3"),
                "it starts like MP3 (an ID3 tag or an MPEG frame sync) but holds no MPEG audio frames"
            ),
            (try write(Data("just some text, no audio at all\n".utf8), "text.wav"), "not an audio format libsndfile reads"),
            (
                try write(Self.wav(rate: 16000, chunk: "da\nt", declaring: 100_000), "newline.wav"),
                "WAV header ends inside the da\\x0At chunk"
            ),
        ]
        let result = try CLI.run(["classify", "--model", CLI.model] + cases.map(\.0))
        #expect(result.exited(1))
        #expect(result.lines.count == cases.count)
        for (line, (path, message)) in zip(result.lines, cases) {
            #expect((line["error"] as? String)?.hasPrefix("\(path): ") == true, "\(line)")
            #expect((line["error"] as? String)?.contains(message) == true, "\(path): \(line)")
        }
        // One error line per file and nothing else: no raw newline from a chunk id, no notes of
        // libmpg123 ("Illegal Audio-MPEG-Header", "Duh") or libsndfile ("possibly a pipe?").
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.filter { $0.contains(" error s4listen: ") }.count == cases.count, "\(result.stderr)")
        #expect(lines.allSatisfy { $0.wholeMatch(of: #/\S+ (error|warning) s4listen: .*/#) != nil }, "\(result.stderr)")
        #expect(!result.stderr.contains("possibly a pipe"), "\(result.stderr)")
    }

    @Test func aNamedPipeIsRefusedByClassifyAndStreamedByListen() throws {
        let fifo = CLI.path("audio.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let refused = try CLI.run(["classify", "--model", CLI.model, fifo], timeout: 10)
        #expect(refused.exited(1))
        #expect(refused.stderr.contains("\(fifo): cannot read audio: is a named pipe"), "\(refused.stderr)")
        let writer = Thread {
            let fd = open(fifo, O_WRONLY)
            let wav = AudioScene.bursts(rate: 16000).wav()
            _ = wav.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        writer.start()
        let streamed = try CLI.run(["listen", "--model", CLI.model, "--all", "--input", fifo], timeout: 20)
        #expect(streamed.exited(0), "\(streamed.stderr)")
        #expect(streamed.lines.count == 3)
    }

    @Test func closedStandardInputAndDamagedMagicAreNamed() throws {
        let closed = try Self.shell("listen --model '\(CLI.model)' --input - <&-")
        #expect(closed.exited(1))
        #expect(closed.stderr.contains("stdin: cannot read audio: file descriptor 0 is not open"), "\(closed.stderr)")
        var damaged = AudioScene.bursts(rate: 16000).wav()
        damaged[0] = UInt8(ascii: "X")
        let result = try CLI.run(["listen", "--model", CLI.model, "--input", "-"], input: damaged)
        #expect(result.exited(1))
        #expect(
            result.stderr.contains(
                "not a WAV stream (it starts with bytes 58 49 46 46), and raw s16le input needs a sampling rate"),
            "\(result.stderr)")
    }

    /// A model path that is not a regular file is named for what it is (once "You don't have
    /// permission" for a named pipe or /dev/null, "NSCocoaErrorDomain error 256" for a folder).
    @Test func modelPathsThatAreNotFilesAreNamed() throws {
        let fifo = CLI.path("model.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let cases = [
            (fifo, "is a named pipe, not a model file"), ("/dev/null", "is a character device, not a model file"),
            (CLI.directory.path, "is a directory, not a model file"),
            (CLI.path("missing.safetensors"), "No such file or directory"),
        ]
        for (path, reason) in cases {
            for command in [["info", path], ["classify", "--model", path, CLI.samples[0]]] {
                let result = try CLI.run(command)
                #expect(result.exited(1), "\(command)")
                #expect(result.stderr.contains("cannot read model file \(path): \(reason)"), "\(result.stderr)")
            }
        }
    }

    /// `random-model` replaces a regular file whole, and writes through anything else: a named
    /// pipe, a symbolic link and a device stay what they were (it once turned /dev/full into a
    /// regular file); a device that cannot take the bytes is an error.
    @Test func modelFilesAreWrittenThroughSpecialFiles() throws {
        let fifo = CLI.path("out.fifo"), target = CLI.path("target.safetensors"), link = CLI.path("link.safetensors")
        #expect(mkfifo(fifo, 0o600) == 0)
        let reader = try Program.start("/bin/sh", ["-c", "timeout 10 cat \"$0\" | wc -c", fifo])
        let throughFIFO = try CLI.run(["random-model", "--size", "1x8x4", fifo])
        #expect(throughFIFO.exited(0), "\(throughFIFO.stderr)")
        let bytes = Int(reader.wait(timeout: 10)?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        #expect(bytes > 1000, "\(bytes) bytes through the pipe")

        #expect(try CLI.run(["random-model", "--size", "1x8x4", target]).exited(0))
        #expect(chmod(target, 0o600) == 0)
        #expect(symlink(target, link) == 0)
        #expect(try CLI.run(["random-model", "--size", "1x8x4", "--seed", "2", link]).exited(0))
        var status = stat()
        #expect(lstat(fifo, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO)
        #expect(lstat(link, &status) == 0 && status.st_mode & S_IFMT == S_IFLNK)
        #expect(stat(target, &status) == 0 && status.st_mode & 0o777 == 0o600, "the replaced file keeps its mode")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data(contentsOf: URL(fileURLWithPath: link)))

        // A character device made here (the one /dev/full is), so that a failure harms nothing.
        let device = CLI.path("full")
        // Major 1, minor 7 in the old 16-bit encoding, which Linux still reads.
        #expect(mknod(device, S_IFCHR | 0o600, dev_t((1 << 8) | 7)) == 0)
        let full = try CLI.run(["random-model", "--size", "1x8x4", device])
        #expect(full.exited(1))
        #expect(full.stderr.contains("cannot write model file \(device): No space left on device"), "\(full.stderr)")
        #expect(lstat(device, &status) == 0 && status.st_mode & S_IFMT == S_IFCHR)
        #expect(try CLI.run(["random-model", CLI.directory.path]).stderr.contains("is a directory"))
    }

    /// A long file in which nothing is detected: label and score are both null, as documented.
    @Test func aLongFileWithoutDetectionsHasNullScore() throws {
        let quiet = CLI.path("quiet-3s.wav")
        try AudioScene.noise(rate: 16000, seconds: 3).wav().write(to: URL(fileURLWithPath: quiet))
        let result = try CLI.run(["classify", "--model", CLI.model, "--threshold", "1", quiet])
        #expect(result.exited(0), "\(result.stderr)")
        #expect(result.stdout.contains("\"label\":null,\"score\":null,\"detections\":[]"), "\(result.stdout)")
    }

    @Test func metadataIsOneLineAndLabelsAreUnique() throws {
        let path = CLI.path("newline.safetensors")
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try Self.model { $0["trained_on"] = "a\nb" })))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let info = try CLI.run(["info", path])
        #expect(info.exited(0))
        #expect(info.stdout.split(separator: "\n").count == 1, "\(info.stdout)")
        let twice = try Self.model { object in
            var labels = object["labels"] as! [String]
            labels[1] = labels[0]
            object["labels"] = labels
        }
        let refused = try CLI.run(["info", twice])
        #expect(refused.exited(1))
        #expect(refused.stderr.contains("labels names \"yes\" twice"), "\(refused.stderr)")
    }
}

/// Bytes a reader thread collects.
final class ReceivedBytes: @unchecked Sendable {
    private let lock = NSLock()
    private var data: [UInt8] = []
    func append(_ slice: ArraySlice<UInt8>) { lock.lock(); data += slice; lock.unlock() }
    var bytes: [UInt8] { lock.lock(); defer { lock.unlock() }; return data }
}
