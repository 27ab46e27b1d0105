import ArgumentParser
import Foundation
import Logging
import S4Service

#if canImport(Glibc)
import Glibc
#endif

@main
struct S4Listen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s4listen",
        abstract: "Recognise spoken commands with S4 (structured state space sequence models), at any sampling rate.",
        version: programVersion,
        subcommands: [
            ListenCommand.self, ServeCommand.self, ClassifyCommand.self, InfoCommand.self, BenchCommand.self,
            RandomModelCommand.self,
        ]
    )

    /// ArgumentParser's own `main`, but for its error message: that is written as a log line
    /// (`LogLine`), the usage text after it for a usage error.
    static func main() async {
        atexit(failOnUnwrittenOutput)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            // Help, the version and completion scripts: the parser's own output and exit.
            guard code != .success else { exit(withError: error) }
            let lines = fullMessage(for: error).split(separator: "\n", maxSplits: 1)
            var message = String(lines.first ?? "")
            if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
            // An ExitCode thrown after the command has said why carries no message.
            if !message.isEmpty { LogLine().write(.error, message) }
            if lines.count > 1 { FileHandle.standardError.write(Data((lines[1] + "\n").utf8)) }
            exit(withError: code)
        }
    }
}

/// Run at exit, before the C library's own flush, which would hide its failure: what `print` and
/// the argument parser (help, usage) left buffered on standard output must reach it, or the exit
/// status is 1 with the reason on standard error. A closed pipe (the reader has gone) stays a
/// clean end.
private func failOnUnwrittenOutput() {
    // Standard output is the only C stream the program writes (standard error is unbuffered).
    guard fflush(nil) != 0 else { return }
    let code = errno
    guard code != EPIPE else { return }
    LogLine().write(.error, "\(OutputError(reason: String(cString: strerror(code))))")
    _exit(1)
}

/// Logs go to standard error; standard output carries only JSON results.
func makeLogger(verbose: Bool) -> Logger {
    LoggingSystem.bootstrap { _ in StandardErrorLogHandler(level: verbose ? .debug : .notice) }
    return Logger(label: "s4listen")
}
