import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `serve`'s zeroconf announcement against a real Avahi daemon, by tools/zeroconf_check.sh (in a
/// network namespace of its own, loopback only): the type `_wyoming._tcp`, the name and the port
/// as avahi-browse resolves them; withdrawn at stop; nothing with --no-zeroconf; a warning and
/// no failure without a daemon.
@Suite struct ZeroconfTests {
    static let script = CLI.packageRoot.appendingPathComponent("tools/zeroconf_check.sh").path

    /// A DNS-SD instance name is one DNS label: 1 to 63 bytes.
    @Test(arguments: ["", String(repeating: "ä", count: 32)])
    func aNameThatIsNotOneLabelIsAUsageError(name: String) throws {
        let result = try CLI.run(["serve", "--uri", "tcp://0.0.0.0:1", "--zeroconf-name", name])
        #expect(result.exited(64), "\(result.stderr)")
        #expect(result.stderr.contains("--zeroconf-name must be 1 to 63 bytes long, got \(name.utf8.count)"), "\(result.stderr)")
    }

    @Test func theAnnouncementCarriesTypeNameAndPort() throws {
        let needed = ["/usr/bin/unshare", "/usr/bin/dbus-daemon", "/usr/sbin/avahi-daemon", "/usr/bin/avahi-browse"]
        let missing = needed.filter { !FileManager.default.isExecutableFile(atPath: $0) }
        guard missing.isEmpty, getuid() == 0 else {
            Issue.record("needs root and \(missing.joined(separator: ", ")) (make deps installs them)")
            return
        }
        let result = try Program.run(Self.script, [CLI.binary, CLI.model], timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.contains { $0.contains("without an Avahi daemon serve serves and warns") }, "\(result.stdout)")
        #expect(
            lines.contains { $0.contains("avahi-browse resolves s4listen\\032zeroconf\\032check;_wyoming._tcp;127.0.0.1;10411") },
            "\(result.stdout)")
        #expect(lines.contains { $0.contains("withdrawn when serve stops") }, "\(result.stdout)")
        #expect(lines.contains { $0.contains("--no-zeroconf announces nothing") }, "\(result.stdout)")
    }
}
