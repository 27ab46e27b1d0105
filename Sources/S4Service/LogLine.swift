import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The one format of everything s4listen writes on standard error, log lines and the error that
/// ends a command alike: `TIME LEVEL s4listen: message key=value …`. Under systemd, when standard
/// error is the journal, a line starts instead with the sd-daemon priority prefix (`<3>` for
/// error … `<7>` for debug, sd-daemon(3)) and carries no time (the journal records its own), so
/// `journalctl -p warning` filters by level.
public struct LogLine: Sendable {
    /// Whether lines carry the priority prefix rather than a time.
    public let isJournal: Bool

    public init(isJournal: Bool = LogLine.standardErrorIsJournal()) { self.isJournal = isJournal }

    /// True when standard error is the stream systemd connected to the journal: `$JOURNAL_STREAM`
    /// names its device and inode (`DEV:INODE`, systemd.exec(5)). Only that match counts: a child
    /// inherits the variable even when its standard error was redirected to a file or a pipe.
    public static func standardErrorIsJournal(
        environment: [String: String] = ProcessInfo.processInfo.environment, descriptor: Int32 = STDERR_FILENO
    ) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let fields = value.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 2, let device = UInt64(fields[0]), let inode = UInt64(fields[1]) else { return false }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    /// The syslog priority of a level (sd-daemon(3)).
    public static func priority(of level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// One line, without its newline. Metadata follows the message as `key=value`, sorted by key.
    public func format(_ level: Logger.Level, _ message: String, metadata: Logger.Metadata = [:], date: Date = Date())
        -> String
    {
        let fields = metadata.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        // A message of several lines stays one journal entry, one terminal line.
        let text = (message + fields).replacingOccurrences(of: "\n", with: " ")
        let start = isJournal ? "<\(Self.priority(of: level))>" : "\(Self.localTime(date)) "
        return "\(start)\(level) s4listen: \(text)"
    }

    /// Writes one line to standard error in a single write, so that lines from several threads
    /// never interleave.
    public func write(_ level: Logger.Level, _ message: String, metadata: Logger.Metadata = [:]) {
        let bytes = Array((format(level, message, metadata: metadata) + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }  // standard error gone: nowhere left to say so
            offset += count
        }
    }

    /// `2026-12-07T22:33:24+0000`: local time with its offset from UTC.
    private static func localTime(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// swift-log's handler for s4listen: every line in `LogLine`'s format.
public struct StandardErrorLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let line: LogLine

    public init(level: Logger.Level, line: LogLine = LogLine()) {
        logLevel = level
        self.line = line
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        line.write(event.level, "\(event.message)", metadata: metadata.merging(event.metadata ?? [:]) { $1 })
    }
}
