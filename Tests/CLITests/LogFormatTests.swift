import Foundation
import Testing

/// Standard error has one format for log lines and the error that ends a command; under systemd,
/// when it is the journal, every line carries its syslog priority for `journalctl -p`.
@Suite struct LogFormatTests {
    /// A log line and a fatal error, in the terminal's format.
    @Test func logLinesAndErrorsShareOneFormat() throws {
        let listen = try CLI.run(["listen", "--model", CLI.model, "--input", CLI.samples[0]])
        let missing = try CLI.run(["classify", "--model", "/nonexistent.safetensors", CLI.samples[0]])
        let usage = try CLI.run(["listen", "--seconds", "-1"])
        #expect(listen.exited(0) && missing.exited(1) && usage.exited(64))
        let time = #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}/#
        let lines = [
            listen.stderr.split(separator: "\n").first { $0.contains("end of input") },
            missing.stderr.split(separator: "\n").first, usage.stderr.split(separator: "\n").first,
        ].map { String($0 ?? "") }
        #expect(
            lines[0].wholeMatch(of: #/(?<t>\S+) notice s4listen: end of input/#)?.t.wholeMatch(of: time) != nil, "\(lines[0])")
        #expect(lines[1].wholeMatch(of: #/(?<t>\S+) error s4listen: cannot read model file .*/#)?.t.wholeMatch(of: time) != nil)
        #expect(lines[2].wholeMatch(of: #/(?<t>\S+) error s4listen: --seconds must be .*/#)?.t.wholeMatch(of: time) != nil)
        // A usage error is followed by the usage text.
        #expect(usage.stderr.contains("\nUsage: s4listen listen"), "\(usage.stderr)")
    }

    /// Standard error named by `$JOURNAL_STREAM` (as systemd sets it): `<N>` priorities, no time.
    /// The variable alone, inherited by a process whose standard error goes elsewhere, changes nothing.
    @Test func theJournalGetsPriorities() throws {
        func run(_ stream: String, _ arguments: [String]) throws -> Program.Result {
            try Program.run("sh", ["-c", "JOURNAL_STREAM=\(stream) exec \"$0\" \"$@\"", CLI.binary] + arguments)
        }
        let own = "$(stat -L -c %d:%i /proc/$$/fd/2)"
        let listen = try run(own, ["listen", "--model", CLI.model, "--input", CLI.samples[0]])
        #expect(listen.status == 0)
        let lines = listen.stderr.split(separator: "\n")
        #expect(lines.contains("<5>notice s4listen: end of input"), "\(listen.stderr)")
        #expect(lines.contains { $0.hasPrefix("<4>warning s4listen: model ") && $0.contains("untrained") }, "\(listen.stderr)")
        #expect(lines.allSatisfy { $0.hasPrefix("<") }, "\(listen.stderr)")
        let failed = try run(own, ["info", "--model", "/nonexistent.safetensors"])
        #expect(failed.status == 1)
        #expect(failed.stderr.hasPrefix("<3>error s4listen: cannot read model file /nonexistent.safetensors"), "\(failed.stderr)")
        let elsewhere = try run("1:1", ["listen", "--model", CLI.model, "--input", CLI.samples[0]])
        #expect(elsewhere.stderr.split(separator: "\n").allSatisfy { !$0.hasPrefix("<") }, "\(elsewhere.stderr)")
        #expect(elsewhere.stderr.contains(" notice s4listen: end of input"))
    }

    @Test func versionIsPrinted() throws {
        let result = try CLI.run(["--version"])
        #expect(result.exited(0))
        #expect(result.stdout.wholeMatch(of: #/\d+\.\d+\.\d+\n/#) != nil, "\(result.stdout)")
    }
}
