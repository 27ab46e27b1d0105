import Foundation
import Testing

/// Where the model comes from: `--model`, `info`'s argument, `$S4LISTEN_MODEL`, else the bundled
/// default. A path named any of these ways that does not exist is an error naming it, never a
/// silent fall-back to the bundled model.
@Suite struct ModelSourceTests {
    static let missing = "/nonexistent/typo.safetensors"

    @Test(arguments: [["info"], ["classify", CLI.samples[0]], ["serve", "--uri", "tcp://127.0.0.1:1"]])
    func aMissingModelFromTheEnvironmentIsAnError(arguments: [String]) throws {
        let result = try CLI.run(arguments, environment: ["S4LISTEN_MODEL": Self.missing])
        #expect(result.exited(1), "\(result.stderr)")
        #expect(result.stdout.isEmpty, "\(result.stdout)")
        #expect(
            result.stderr.contains("$S4LISTEN_MODEL: cannot read model file \(Self.missing): No such file or directory"),
            "\(result.stderr)")
    }

    @Test(arguments: [["info", missing], ["info", "--model", missing], ["classify", "--model", missing, CLI.samples[0]]])
    func aMissingModelGivenOnTheCommandLineIsAnError(arguments: [String]) throws {
        let result = try CLI.run(arguments, environment: ["S4LISTEN_MODEL": ""])
        #expect(result.exited(1), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("cannot read model file \(Self.missing): No such file or directory"), "\(result.stderr)")
    }

    /// Run by its bare name from PATH, in another directory (argv[0] then says nothing of where it
    /// is), the binary still finds the bundled model beside it.
    @Test func theBundledModelIsFoundWhenRunFromPath() throws {
        let folder = URL(fileURLWithPath: CLI.binary).deletingLastPathComponent().path
        let result = try Program.run("sh", ["-c", "cd / && PATH=\"$0:$PATH\" S4LISTEN_MODEL= exec s4listen info", folder])
        #expect(result.status == 0, "\(result.stderr)")
        let bundled = CLI.packageRoot.appendingPathComponent("models/default.safetensors").standardized.path
        #expect(result.stdout.hasPrefix("{\"file\":\"\(bundled)\""), "\(result.stdout.prefix(200))")
    }

    @Test func infoHonoursTheEnvironmentAndTheCommandLineWins() throws {
        let fromEnvironment = try CLI.run(["info"], environment: ["S4LISTEN_MODEL": CLI.model])
        #expect(fromEnvironment.exited(0), "\(fromEnvironment.stderr)")
        #expect(fromEnvironment.lines.first?["file"] as? String == CLI.model)
        #expect(fromEnvironment.lines.first?["untrained"] as? Bool == true)
        let bundled = CLI.packageRoot.appendingPathComponent("models/default.safetensors").path
        for arguments in [["info", "--model", bundled], ["info", bundled]] {
            let given = try CLI.run(arguments, environment: ["S4LISTEN_MODEL": Self.missing])
            #expect(given.exited(0), "\(given.stderr)")
            #expect(given.lines.first?["file"] as? String == bundled)
        }
        let both = try CLI.run(["info", "--model", bundled, CLI.model])
        #expect(both.exited(64))
        #expect(both.stderr.contains("give the model either as an argument or with --model, not both"), "\(both.stderr)")
    }
}
