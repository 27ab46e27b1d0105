import ArgumentParser
import Logging

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
