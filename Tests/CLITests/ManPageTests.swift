import Foundation
import Testing

/// The man page, docs/s4listen.1, is written by hand: it must name every option each command
/// takes (as `--help` lists them) and render without a warning.
@Suite struct ManPageTests {
    static let page = CLI.packageRoot.appendingPathComponent("docs/s4listen.1").path

    @Test(arguments: ["listen", "serve", "classify", "info", "bench", "random-model"])
    func everyOptionIsDocumented(command: String) throws {
        let help = try CLI.run([command, "--help"])
        #expect(help.exited(0))
        let options = Set(help.stdout.matches(of: #/(?:^|[\s,\[])(--[a-z][a-z-]*)/#).map { String($0.output.1) })
        #expect(options.contains("--model") || command == "random-model", "\(help.stdout)")
        // In roff a hyphen that must stay one is written \-.
        let roff = try String(contentsOfFile: Self.page, encoding: .utf8).replacingOccurrences(of: "\\-", with: "-")
        for option in options.subtracting(["--help"]) {
            #expect(roff.contains(option), "docs/s4listen.1 does not document \(command) \(option)")
        }
    }

    @Test func theCommandsAndEnvironmentAreDocumented() throws {
        let roff = try String(contentsOfFile: Self.page, encoding: .utf8).replacingOccurrences(of: "\\-", with: "-")
        for name in ["listen", "serve", "classify", "info", "bench", "random-model"] {
            #expect(roff.contains(".B \(name)\n"), "no entry for the command \(name)")
        }
        for variable in [
            "S4LISTEN_MODEL", "S4LISTEN_FILES_FROM", "S4LISTEN_SHARD", "JOURNAL_STREAM", "--generate-completion-script",
        ] {
            #expect(roff.contains(variable), "\(variable) is not documented")
        }
    }

    /// `man -l` formats it (groff's warnings on: a bad macro or escape fails).
    @Test func theManPageRenders() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/man") else {
            Issue.record("man is needed (apt-get install man-db)")
            return
        }
        let result = try Program.run("sh", ["-c", "LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l \"$0\"", Self.page])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        #expect(result.stdout.contains("SYNOPSIS") && result.stdout.contains("s4listen serve"), "\(result.stdout.prefix(400))")
    }
}
