import Foundation
import Logging
import S4Service
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Log lines: one format, and the journal's priority prefix only when standard error is the
/// journal's stream.
@Suite struct LogLineTests {
    @Test func aTerminalLineHasTheTimeLevelAndMetadataSorted() {
        let line = LogLine(isJournal: false).format(
            .notice, "serving Wyoming", metadata: ["uri": "tcp://127.0.0.1:10400", "b": "2"],
            date: Date(timeIntervalSince1970: 0))
        let pattern =
            #/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} notice s4listen: serving Wyoming b=2 uri=tcp://127\.0\.0\.1:10400$/#
        #expect(line.wholeMatch(of: pattern) != nil, "\(line)")
    }

    @Test func aJournalLineStartsWithItsPriorityAndHasNoTime() {
        let journal = LogLine(isJournal: true)
        let expected: [(Logger.Level, Int)] = [
            (.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
        ]
        for (level, priority) in expected {
            #expect(journal.format(level, "a\nb") == "<\(priority)>\(level) s4listen: a b")
        }
    }

    /// `$JOURNAL_STREAM` counts only when it names the descriptor's own device and inode.
    @Test func theJournalIsRecognisedByDeviceAndInode() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("log-line-\(getpid())").path
        let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer {
            close(fd)
            unlink(path)
        }
        var status = stat()
        try #require(fstat(fd, &status) == 0)
        let own = "\(status.st_dev):\(status.st_ino)"
        #expect(LogLine.standardErrorIsJournal(environment: ["JOURNAL_STREAM": own], descriptor: fd))
        for other in [
            nil, "", "\(status.st_dev):\(status.st_ino + 1)", "\(status.st_dev + 1):\(status.st_ino)", "x:y", own + ":1",
        ] {
            let environment = other.map { ["JOURNAL_STREAM": $0] } ?? [:]
            #expect(!LogLine.standardErrorIsJournal(environment: environment, descriptor: fd), "\(other ?? "unset")")
        }
    }
}
