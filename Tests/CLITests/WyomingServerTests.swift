import Foundation
import S4Audio
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `s4listen serve` against the real Wyoming client library (`pip install wyoming`; `make test`
/// installs it), driven through `tools/wyoming_client.py`: describe, real command clips streamed at
/// 16 and 48 kHz over TCP and a Unix socket (no resampling on either side), noise, two clients at
/// once, broken clients, SIGHUP; and `listen --output names`, the external wake program contract.
///
/// The clips are the bundled samples and test-speaker clips that the bundled model detects as
/// their own word with a wide margin at both rates, each with a second of silence around it as the
/// streams below have (`s4listen classify` on the padded clip, chosen at run time), so the tests
/// follow the model file rather than hard-coding what one model says. Only loopback addresses
/// are used.
@Suite(.serialized) struct WyomingServerTests {
    static let client = CLI.packageRoot.appendingPathComponent("tools/wyoming_client.py").path
    static let testClips = CLI.packageRoot.appendingPathComponent("../shared/data/speech-commands/test").standardized
    static let noise = CLI.packageRoot.appendingPathComponent(
        "../shared/data/speech-commands/_background_noise_/white_noise.flac"
    ).standardized.path

    /// A clip at 16 kHz and the same clip made 48 kHz by sox, with the word it says.
    struct Clip {
        let word: String
        let at16k: String
        let at48k: String
    }

    /// Up to four clips of different words, each detected as its word with probability ≥ 0.9 at
    /// 16 and at 48 kHz by the bundled model. The server and `listen` run with `--threshold` set
    /// to that selection level: these tests are about the protocol, not the model's threshold.
    /// (A clip is chosen by its detection in silence, not by classifying it alone: the detector's
    /// windows start where the word's onset puts them, and a model may be less sure there.)
    static let selectionLevel = "0.9"
    static let clips: [Clip] = {
        var candidates: [(word: String, path: String)] = ["yes", "stop"].map {
            ($0, CLI.packageRoot.appendingPathComponent("samples/\($0).flac").path)
        }
        for word in ["down", "right", "on", "off", "left", "go", "no", "up"] {
            let folder = testClips.appendingPathComponent(word)
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter {
                $0.hasSuffix(".flac")
            }.sorted()
            candidates += files.prefix(3).map { (word, folder.appendingPathComponent($0).path) }
        }
        var converted: [Clip] = []
        var padded: [String: String] = [:]  // a clip's file → the same with a second of silence around it
        for (index, (word, path)) in candidates.enumerated() {
            let at48k = CLI.path("\(word)-\(index)-48k.wav")
            guard (try? Program.run("sox", [path, "-r", "48000", at48k]).status) == 0 else { continue }
            for file in [path, at48k] {
                let around = CLI.path("\(word)-\(index)-\(file == path ? "16k" : "48k")-padded.wav")
                guard (try? Program.run("sox", [file, around, "pad", "1", "1"]).status) == 0 else { continue }
                padded[file] = around
            }
            converted.append(Clip(word: word, at16k: path, at48k: at48k))
        }
        guard let result = try? CLI.run(["classify"] + padded.values.sorted(), timeout: 120) else { return [] }
        var verdicts: [String: (label: String, score: Double)] = [:]
        for line in result.lines {
            if let file = line["file"] as? String, let label = line["label"] as? String, let score = line["score"] as? Double {
                verdicts[file] = (label, score)
            }
        }
        func reliable(_ file: String, _ word: String) -> Bool {
            padded[file].flatMap { verdicts[$0] }.map { $0.label == word && $0.score >= Double(selectionLevel)! } ?? false
        }
        var chosen: [Clip] = []
        for clip in converted where reliable(clip.at16k, clip.word) && reliable(clip.at48k, clip.word) {
            if chosen.count < 4, !chosen.contains(where: { $0.word == clip.word }) { chosen.append(clip) }
        }
        return chosen
    }()

    /// The Python side is there (make test installs it), and enough clips were found.
    static func ready(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let probe = try? Program.run("python3", ["-c", "import wyoming, soundfile, numpy"])
        guard probe?.status == 0 else {
            Issue.record(
                "python3 with wyoming, soundfile and numpy is needed (make test runs the tests with the project's environment first on PATH: make py-env): \(probe?.stderr ?? "no python3")",
                sourceLocation: sourceLocation)
            return false
        }
        guard clips.count >= 2 else {
            Issue.record(
                "fewer than two clips the model recognises reliably (found \(clips.map(\.word)))", sourceLocation: sourceLocation)
            return false
        }
        return true
    }

    /// Runs the client script; its one JSON object.
    static func wyoming(_ arguments: [String], timeout: Double = 60, sourceLocation: SourceLocation = #_sourceLocation)
        -> [String: Any]
    {
        let result = try? Program.run("python3", [client] + arguments, timeout: timeout)
        guard let result, result.status == 0,
            let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        else {
            Issue.record(
                "wyoming_client.py \(arguments.joined(separator: " ")) failed: \(result?.stderr ?? "")",
                sourceLocation: sourceLocation)
            return [:]
        }
        return object
    }

    static func events(_ object: [String: Any]) -> [[String: Any]] { object["events"] as? [[String: Any]] ?? [] }
    static func detections(_ events: [[String: Any]]) -> [String] {
        events.filter { $0["type"] as? String == "detection" }.compactMap { $0["name"] as? String }
    }

    /// A server on a free loopback port (or a Unix socket), READY before it returns.
    final class Server {
        let child: ChildProcess
        let uri: String
        let notify: NotifySocket

        init(unix: Bool = false, arguments: [String] = []) throws {
            uri = unix ? "unix://" + CLI.path("wyoming.sock") : "tcp://127.0.0.1:\(try Self.freePort())"
            notify = try NotifySocket()
            child = try ChildProcess(
                ["serve", "--uri", uri, "--threshold", WyomingServerTests.selectionLevel] + arguments,
                environment: ["NOTIFY_SOCKET": notify.path], hasInput: false)
            #expect(notify.receive(timeout: 30) { $0.contains("READY=1") }, "\(child.stderr)")
        }

        deinit { if child.isRunning { child.signal(SIGKILL) } }

        /// SIGTERM: a clean exit.
        func stop(sourceLocation: SourceLocation = #_sourceLocation) {
            child.signal(SIGTERM)
            #expect(child.waitForExit(timeout: 10), sourceLocation: sourceLocation)
            #expect(child.result().exited(0), "\(child.stderr)", sourceLocation: sourceLocation)
        }

        /// The kernel's choice of a free port on 127.0.0.1.
        static func freePort() throws -> Int {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
                }
            }
            guard ok else { throw POSIXError(.EADDRINUSE) }
            return Int(UInt16(bigEndian: address.sin_port))
        }

        /// Resident memory of the server, in bytes.
        var residentBytes: Int {
            let status = (try? String(contentsOfFile: "/proc/\(child.pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
    }

    // MARK: describe and streams

    @Test func describeListsTheCommandsAsWakeModels() throws {
        guard Self.ready() else { return }
        let server = try Server()
        let info = Self.wyoming(["describe", server.uri])
        let labels = try CLI.run(["info"]).lines.first?["labels"] as? [String] ?? []
        let models = info["models"] as? [[String: Any]] ?? []
        #expect(info["program"] as? String == "s4listen")
        // The program's version is the one `s4listen --version` prints.
        let version = try CLI.run(["--version"])
        #expect(version.exited(0) && !version.stdout.isEmpty)
        #expect(info["version"] as? String == version.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "\(info)")
        #expect(models.compactMap { $0["name"] as? String } == labels.filter { !$0.hasPrefix("_") })
        for model in models {
            #expect(model["phrase"] as? String == model["name"] as? String)
            // Home Assistant's wake-word list shows the description: the word, capitalised ("Go").
            let name = model["name"] as? String ?? ""
            #expect(model["description"] as? String == name.prefix(1).uppercased() + name.dropFirst(), "\(model)")
            #expect(model["languages"] as? [String] == ["en"])
            #expect(!(model["version"] as? String ?? "").isEmpty)
            #expect(!(model["attribution"] as? String ?? "").isEmpty)
        }
        server.stop()
    }

    /// Each clip in one stream, a second of silence around each: one detection per command with
    /// its name, in order, at 16 kHz (16-bit mono) and 48 kHz (32-bit stereo, down-mixed), over TCP
    /// and over a Unix socket.
    @Test(arguments: [false, true]) func commandsAreDetectedAtTheClientsRate(unix: Bool) throws {
        guard Self.ready() else { return }
        let server = try Server(unix: unix)
        let words = Self.clips.map(\.word)
        let at16k = Self.wyoming(["stream", server.uri] + Self.clips.map(\.at16k))
        #expect(at16k["rate"] as? Int == 16000)
        #expect(Self.events(at16k).map { $0["type"] as? String } == words.map { _ in "detection" }, "\(at16k)")
        #expect(Self.detections(Self.events(at16k)) == words)
        let at48k = Self.wyoming(["stream", server.uri, "--width", "4", "--channels", "2"] + Self.clips.map(\.at48k))
        #expect(at48k["rate"] as? Int == 48000)
        #expect(Self.detections(Self.events(at48k)) == words, "\(at48k)")
        // Timestamps: ms of audio, increasing, each within the stream.
        let times = Self.events(at48k).compactMap { $0["timestamp"] as? Int }
        #expect(times == times.sorted() && times.count == words.count)
        #expect(times.allSatisfy { $0 > 0 && Double($0) <= 1000 * (at48k["seconds"] as? Double ?? 0) })
        // wyoming-satellite sends chunks without audio-start: the first chunk's format starts the stream.
        let satellite = Self.wyoming(["stream", server.uri, "--no-audio-start", "--channels", "2"] + Self.clips.map(\.at48k))
        #expect(Self.detections(Self.events(satellite)) == words, "\(satellite)")
        // A stream of noise: nothing fires, and the end of the stream says so.
        let noise = Self.wyoming(["stream", server.uri, Self.noise, "--gap", "0", "--max-seconds", "5"])
        #expect(Self.events(noise).map { $0["type"] as? String } == ["not-detected"], "\(noise)")
        // detect with other names: the command is heard but not reported.
        let other = Self.clips.first { $0.word != Self.clips[0].word }!.word
        let filtered = Self.wyoming(["stream", server.uri, Self.clips[0].at16k, "--names", other])
        #expect(Self.events(filtered).map { $0["type"] as? String } == ["not-detected"], "\(filtered)")
        server.stop()
        if unix { #expect(!FileManager.default.fileExists(atPath: String(server.uri.dropFirst("unix://".count)))) }
    }

    /// A detect naming only words the model does not have is answered with an error event naming
    /// them and the model's words; the client stays connected, and its stream ends in not-detected.
    @Test func detectWithOnlyUnknownWordsIsAnError() throws {
        guard Self.ready() else { return }
        let server = try Server()
        let result = Self.wyoming(["stream", server.uri, Self.clips[0].at16k, "--names", "hey_jarvis", "Alexa"])
        let events = Self.events(result)
        #expect(events.map { $0["type"] as? String } == ["error", "not-detected"], "\(result)")
        #expect(events.first?["code"] as? String == "unknown-wake-word")
        let text = events.first?["text"] as? String ?? ""
        for word in ["hey_jarvis", "alexa"] + Self.clips.map(\.word) { #expect(text.contains(word), "\(text)") }
        // One known name among unknown ones: no error, and that word is reported.
        let mixed = Self.wyoming(["stream", server.uri, Self.clips[0].at16k, "--names", "alexa", Self.clips[0].word])
        #expect(Self.events(mixed).map { $0["type"] as? String } == ["detection"], "\(mixed)")
        server.stop()
        #expect(server.child.stderr.contains("client asked for wake words the model does not have"))
    }

    /// `serve --words`: the words armed when detect names none; a detect that names words still
    /// chooses for itself. A word the model does not have is refused at start.
    @Test func wordsChooseWhatADetectWithoutNamesArms() throws {
        guard Self.ready() else { return }
        let (armed, other) = (Self.clips[0], Self.clips[1])
        let server = try Server(arguments: ["--words", " \(armed.word.uppercased()) "])
        let both = [armed.at16k, other.at16k]
        let unnamed = Self.wyoming(["stream", server.uri] + both)
        #expect(Self.detections(Self.events(unnamed)) == [armed.word], "\(unnamed)")
        let named = Self.wyoming(["stream", server.uri] + both + ["--names", other.word])
        #expect(Self.detections(Self.events(named)) == [other.word], "\(named)")
        server.stop()

        let refused = try CLI.run(["serve", "--uri", "tcp://127.0.0.1:1", "--words", "\(armed.word),hello"])
        #expect(refused.exited(1))
        #expect(refused.stderr.contains("--words: hello not among the model's command words"), "\(refused.stderr)")
        let empty = try CLI.run(["serve", "--words", " , "])
        #expect(empty.exited(64) && empty.stderr.contains("--words needs at least one word"), "\(empty.stderr)")
    }

    @Test func twoClientsAtOnceGetTheirOwnEvents() throws {
        guard Self.ready() else { return }
        let server = try Server()
        let (first, second) = (Self.clips[0], Self.clips[1])
        let result = Self.wyoming(["pair", server.uri, first.at16k, second.at48k])
        let clients = result["clients"] as? [[String: Any]] ?? []
        #expect(clients.count == 2)
        if clients.count == 2 {
            #expect(clients[0]["rate"] as? Int == 16000 && clients[1]["rate"] as? Int == 48000)
            #expect(Self.detections(Self.events(clients[0])) == [first.word], "\(clients[0])")
            #expect(Self.detections(Self.events(clients[1])) == [second.word], "\(clients[1])")
        }
        server.stop()
    }

    // MARK: bad clients

    /// Broken clients one after another while a good one streams in real time: each is refused
    /// with an error event or a closed connection and a log line; the good one gets its
    /// detections, the server's memory does not take a 100 MB declared payload, and it still
    /// serves new clients afterwards.
    @Test func badClientsDoNotDisturbTheOthers() throws {
        guard Self.ready() else { return }
        let server = try Server(arguments: ["--max-clients", "16"])
        let good = try Program.start(
            "python3", [Self.client, "stream", server.uri, "--realtime"] + Self.clips.prefix(2).map(\.at16k))
        usleep(300_000)

        let malformed = Self.wyoming(["bad", server.uri, "malformed"])
        #expect(malformed["type"] as? String == "error" && malformed["code"] as? String == "malformed-header", "\(malformed)")
        let short = Self.wyoming(["bad", server.uri, "short-payload"])
        #expect(short["type"] as? String == "closed", "\(short)")
        let before = server.residentBytes
        let huge = Self.wyoming(["bad", server.uri, "huge-payload"])
        #expect(huge["type"] as? String == "error" && huge["code"] as? String == "too-large", "\(huge)")
        #expect(server.residentBytes - before < 32 << 20, "resident memory grew from \(before) to \(server.residentBytes) bytes")
        #expect(Self.wyoming(["bad", server.uri, "mid-chunk"])["type"] as? String == "disconnected")
        let rate = Self.wyoming(["bad", server.uri, "bad-rate"])
        #expect(rate["code"] as? String == "unsupported-audio", "\(rate)")
        let width = Self.wyoming(["bad", server.uri, "bad-width"])
        #expect(width["code"] as? String == "unsupported-audio", "\(width)")
        let burst = Self.wyoming(["bad", server.uri, "burst"])
        #expect(burst["connected"] as? Int == 200 && burst["failed"] as? Int == 0, "\(burst)")
        // At most 16 at once: the good client holds one place, so at least 185 are refused.
        #expect((burst["refused"] as? Int ?? 0) >= 185, "\(burst)")

        let finished = good.wait(timeout: 60)
        #expect(finished?.status == 0, "\(finished?.stderr ?? "good client still running")")
        let goodEvents = (try? JSONSerialization.jsonObject(with: Data((finished?.stdout ?? "").utf8))) as? [String: Any] ?? [:]
        #expect(Self.detections(Self.events(goodEvents)) == Self.clips.prefix(2).map(\.word), "\(goodEvents)")
        // Still serving.
        let after = Self.wyoming(["stream", server.uri, Self.clips[0].at16k])
        #expect(Self.detections(Self.events(after)) == [Self.clips[0].word])
        #expect(server.child.isRunning)
        let log = server.child.stderr
        for expected in [
            "malformed event header", "over the limit", "connection closed in the middle of an event",
            "is outside", "is not supported", "too many clients",
        ] {
            #expect(log.contains(expected), "no log line with \(expected)")
        }
        server.stop()
    }

    // MARK: SIGHUP

    @Test func sighupReloadsTheModelAndABadFileKeepsTheOldOne() throws {
        guard Self.ready() else { return }
        let modelPath = CLI.path("serve-model.safetensors")
        let bundled = CLI.packageRoot.appendingPathComponent("models/default.safetensors").path
        try FileManager.default.copyItem(atPath: bundled, toPath: modelPath)
        let server = try Server(arguments: ["--model", modelPath])
        let version = {
            ((Self.wyoming(["describe", server.uri])["models"] as? [[String: Any]])?.first?["version"] as? String) ?? ""
        }
        let first = version()

        try Data("not a model".utf8).write(to: URL(fileURLWithPath: modelPath))
        server.child.signal(SIGHUP)
        #expect(
            server.notify.receive(timeout: 15) { $0.contains { $0.hasPrefix("STATUS=model reload refused") } },
            "\(server.child.stderr)")
        // The log line and the notification travel by different pipes: wait for the line too.
        #expect(
            server.child.wait(timeout: 5) { server.child.stderr.contains("model reload refused, the running model stays") },
            "\(server.child.stderr)")
        #expect(version() == first)
        let still = Self.wyoming(["stream", server.uri, Self.clips[0].at16k])
        #expect(Self.detections(Self.events(still)) == [Self.clips[0].word])

        // A good file: the random test model, whose metadata (and so version) differs.
        try FileManager.default.removeItem(atPath: modelPath)
        try FileManager.default.copyItem(atPath: CLI.model, toPath: modelPath)
        server.child.signal(SIGHUP)
        #expect(server.notify.receive(timeout: 15) { $0.contains("STATUS=model reloaded") }, "\(server.child.stderr)")
        #expect(version() != first)
        server.stop()
    }

    // MARK: listen --output names

    /// The external wake program contract of Wyoming satellites: raw PCM in at a declared rate,
    /// width and channel count; one detected name per line out.
    @Test func listenPrintsOneNamePerLine() throws {
        guard Self.ready() else { return }
        var pcm = Data()
        let rate = 16000
        let gap = Data(count: rate * 2)  // a second of 16-bit silence
        pcm.append(gap)
        for clip in Self.clips {
            let reader = try SoundFileReader(path: clip.at16k)
            #expect(reader.sampleRate == rate)
            let samples = try reader.readAll(limit: rate * 2)
            for x in samples {
                let value = Int16(max(-32768, min(32767, (x * 32768).rounded())))
                withUnsafeBytes(of: value.littleEndian) { pcm.append(contentsOf: $0) }
            }
            pcm.append(gap)
        }
        let result = try CLI.run(
            [
                "listen", "--input", "-", "--format", "s16le", "--rate", "\(rate)", "--output", "names",
                "--threshold", Self.selectionLevel,
            ], input: pcm)
        #expect(result.exited(0), "\(result.stderr)")
        #expect(result.stdout == Self.clips.map { $0.word + "\n" }.joined(), "\(result.stdout)")
    }
}

/// Another program (python3, sox) run from a test: its exit status and output.
enum Program {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// A running program whose output is collected as it arrives.
    final class Running: @unchecked Sendable {
        let process = Process()
        private let out = Pipe(), err = Pipe()
        private let lock = NSLock()
        private var collected = (Data(), Data())
        private let readers = DispatchGroup()

        init(_ executable: String, _ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = out
            process.standardError = err
            try process.run()
            for (handle, isOutput) in [(out.fileHandleForReading, true), (err.fileHandleForReading, false)] {
                readers.enter()
                Thread { [self] in
                    let data = handle.readDataToEndOfFile()
                    lock.withLock { if isOutput { collected.0 = data } else { collected.1 = data } }
                    readers.leave()
                }.start()
            }
        }

        /// Waits up to `timeout` seconds; nil (and the program killed) if it is still running.
        func wait(timeout: Double) -> Result? {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
                return nil
            }
            _ = readers.wait(timeout: .now() + 5)
            return lock.withLock {
                Result(
                    status: process.terminationStatus, stdout: String(decoding: collected.0, as: UTF8.self),
                    stderr: String(decoding: collected.1, as: UTF8.self))
            }
        }
    }

    static func start(_ executable: String, _ arguments: [String]) throws -> Running { try Running(executable, arguments) }

    static func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> Result {
        try start(executable, arguments).wait(timeout: timeout)
            ?? Result(status: -1, stdout: "", stderr: "timed out after \(timeout) s")
    }
}
