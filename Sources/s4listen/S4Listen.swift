import ArgumentParser
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
        subcommands: [
            ListenCommand.self, ServeCommand.self, ClassifyCommand.self, InfoCommand.self, BenchCommand.self,
            RandomModelCommand.self,
        ]
    )

    static func main() async {
        atexit(failOnUnwrittenOutput)
        await main(nil)
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
    let message = Array("Error: \(OutputError(reason: String(cString: strerror(code))))\n".utf8)
    _ = write(STDERR_FILENO, message, message.count)
    _exit(1)
}

/// Logs go to standard error; standard output carries only JSON results.
func makeLogger(verbose: Bool) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = verbose ? .debug : .notice
        return handler
    }
    return Logger(label: "s4listen")
}
