import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a port scanner, a buggy satellite or a hostile client on the LAN may do to `serve`, and
/// local clients to `listen --socket`: none of it may crash the service, lock others out or
/// exhaust its descriptors. The crowds are `tools/wyoming_crowd.py` (real sockets, the real client
/// library for the normal client); only loopback addresses are used.
@Suite(.serialized) struct ServiceRobustnessTests {
    typealias Server = WyomingServerTests.Server

    static let crowdScript = CLI.packageRoot.appendingPathComponent("tools/wyoming_crowd.py").path

    /// `wyoming_crowd.py`: the normal client's events and time, and what each kind was told.
    static func crowd(_ server: Server, kinds: String, over: Double, hold: Double = 0, inOrder: Bool = false)
        -> (events: [[String: Any]], seconds: Double, told: [String: [String: Int]])
    {
        let clip = WyomingServerTests.clips[0].at16k
        let arguments =
            [server.uri, clip, "--kinds", kinds, "--over", "\(over)", "--hold", "\(hold)"] + (inOrder ? ["--in-order"] : [])
        let run = try? Program.run("python3", [crowdScript] + arguments, timeout: 120)
        guard let run, run.status == 0,
            let result = try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        else {
            Issue.record("wyoming_crowd.py \(arguments.joined(separator: " ")) failed: \(run?.stderr ?? "")")
            return ([], .infinity, [:])
        }
        return (
            WyomingServerTests.events(result), result["seconds"] as? Double ?? .infinity,
            result["told"] as? [String: [String: Int]] ?? [:]
        )
    }

    /// A timestamp near 2^63 once ended the server with SIGILL when a word was detected (the
    /// audio time added to it overflowed); now it is refused with an error event to that client
    /// alone, and the largest accepted one (2^53 − 1) gives a detection at its own clock.
    @Test func timestampsOutOfRangeAreRefusedAndTheServerLives() throws {
        guard WyomingServerTests.ready() else { return }
        let server = try Server()
        let clip = WyomingServerTests.clips[0]
        for timestamp in [Int.max, Int.max - 999, -1] {
            let refused = WyomingServerTests.wyoming(["stream", server.uri, clip.at16k, "--timestamp", "\(timestamp)"])
            let error = WyomingServerTests.events(refused).first { $0["type"] as? String == "error" }
            #expect(error?["code"] as? String == "bad-event", "\(timestamp): \(refused)")
            #expect((error?["text"] as? String)?.contains("\"timestamp\" must be a whole number of milliseconds") == true)
            #expect(server.child.isRunning, "\(server.child.stderr)")
        }
        let largest = (1 << 53) - 1
        let accepted = WyomingServerTests.wyoming(["stream", server.uri, clip.at16k, "--timestamp", "\(largest)"])
        let detection = WyomingServerTests.events(accepted).first { $0["type"] as? String == "detection" }
        #expect(detection?["name"] as? String == clip.word, "\(accepted)")
        let timestamp = (detection?["timestamp"] as? NSNumber)?.int64Value ?? 0
        #expect(timestamp > largest && timestamp < largest + 5000, "\(timestamp)")
        server.stop()
    }

    /// 64 hostile clients (idle, trickling a header, lying about a payload, huge timestamps,
    /// never reading, plus a few that ask and wait) against the default 32 places: a normal
    /// client still gets its detection at once, by taking an idle client's place.
    @Test func aHostileCrowdLeavesRoomForANormalClient() throws {
        guard WyomingServerTests.ready() else { return }
        let server = try Server()
        let (events, seconds, told) = Self.crowd(
            server, kinds: "idle=16,trickle=12,lying=12,huge-timestamp=8,mute-reader=8,asker=8", over: 2, hold: 1.5)
        #expect(WyomingServerTests.detections(events) == [WyomingServerTests.clips[0].word], "\(events)")
        #expect(seconds < 10, "the normal client took \(seconds) s")
        #expect((told["idle"]?["displaced"] ?? 0) > 0, "\(told)")
        #expect(told["huge-timestamp"] == ["bad-event": 8], "\(told)")
        #expect(server.child.isRunning)
        #expect(server.child.stderr.contains("to make room for a new client"))
        server.stop()
    }

    /// An idle client is closed after --idle-timeout, one that trickles a header after
    /// --event-timeout from its first byte, each told why.
    @Test func idleAndTricklingClientsAreClosed() throws {
        guard WyomingServerTests.ready() else { return }
        let server = try Server(arguments: ["--idle-timeout", "3", "--event-timeout", "1"])
        // Trickling clients send their first byte after 2 s (under the idle timeout).
        let (events, _, told) = Self.crowd(server, kinds: "idle=3,trickle=3", over: 0.3, hold: 4)
        #expect(WyomingServerTests.detections(events) == [WyomingServerTests.clips[0].word], "\(events)")
        #expect(told["idle"] == ["idle-timeout": 3], "\(told)")
        #expect(told["trickle"] == ["event-timeout": 3], "\(told)")
        #expect(server.child.stderr.contains("no event for 3.0 s"), "\(server.child.stderr)")
        #expect(server.child.stderr.contains("an event was not complete 1.0 s after its first byte"))
        server.stop()
    }

    /// With every place held by a busy client (a ping every 100 ms), newcomers that have already
    /// sent an event are refused with the `too-many-clients` event, none with a reset.
    @Test func refusedClientsAreToldWhyNotReset() throws {
        guard WyomingServerTests.ready() else { return }
        let server = try Server(arguments: ["--max-clients", "4"])
        let (events, _, told) = Self.crowd(server, kinds: "busy=4,asker=60", over: 1.5, hold: 0.5, inOrder: true)
        #expect(told["asker"] == ["too-many-clients": 60], "\(told)")
        #expect(told["busy"] == ["held": 4], "\(told)")
        #expect(events.first?["code"] as? String == "too-many-clients", "\(events)")
        server.stop()
    }

    // MARK: The event socket

    /// Descriptors the process holds.
    static func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// 2,000 clients that connect and hang up in a quiet room: each descriptor is closed when
    /// its client leaves, not at the next event line (which once never came: 1,024 cycles ran
    /// the process out of descriptors). Past 256 clients at once, newcomers are refused.
    @Test func eventSocketClientsThatLeaveAreClosedAtOnce() throws {
        let path = CLI.path("quiet.sock")
        let notify = try NotifySocket()
        let child = try ChildProcess(
            ["listen", "--model", CLI.model, "--input", "-", "--format", "s16le", "--rate", "16000", "--socket", path],
            environment: ["NOTIFY_SOCKET": notify.path])
        defer {
            child.closeInput()
            if child.isRunning { child.signal(SIGKILL) }
        }
        #expect(notify.receive(timeout: 15) { $0.contains("READY=1") }, "\(child.stderr)")
        // A few cycles first: what the process opens once, on its first client (a thread's
        // descriptors), is not what is measured.
        for _ in 0..<20 {
            if let fd = EventSocketTests.connectClient(path) { close(fd) }
        }
        usleep(500_000)
        let before = Self.openDescriptors(child.pid)
        for _ in 0..<2000 {
            if let fd = EventSocketTests.connectClient(path) { close(fd) }
        }
        var after = Int.max
        for _ in 0..<200 where after > before {  // up to 10 s: a loaded machine lags
            usleep(50_000)
            after = Self.openDescriptors(child.pid)
        }
        #expect(after <= before, "descriptors: \(before) before, \(after) after 2,000 connect-and-close cycles")

        let held = (0..<300).compactMap { _ in EventSocketTests.connectClient(path) }
        defer { held.forEach { close($0) } }
        #expect(child.wait(timeout: 5) { child.stderr.contains("event socket client refused: 256 clients connected") })
        // Each refused client holds a descriptor for a moment between its accept and its close.
        var held256 = Int.max
        for _ in 0..<200 where held256 > before + 256 {
            usleep(50_000)
            held256 = Self.openDescriptors(child.pid)
        }
        #expect(held256 <= before + 256, "descriptors: \(before) before, \(held256) with 300 clients held")
        #expect(child.isRunning)
    }
}
