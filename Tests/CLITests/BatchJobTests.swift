import Foundation
import Testing

/// `classify --files-from` and `--shard`: a list of files cut into parts for a scheduler's array
/// of jobs, each part's output JSON lines as for files named on the command line.
@Suite struct BatchJobTests {
    /// Seven distinct audio files (copies of the two samples), and the list naming them.
    static let files: [String] = (0..<7).map { index in
        let path = CLI.directory.appendingPathComponent("batch-\(index).flac").path
        if !FileManager.default.fileExists(atPath: path) {
            try? FileManager.default.copyItem(atPath: CLI.samples[index % 2], toPath: path)
        }
        return path
    }

    static func writeList(_ text: String) throws -> String {
        let path = CLI.path("list.txt")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func classify(_ arguments: [String], input: Data? = nil, environment: [String: String] = [:]) throws -> CLI.Result {
        try CLI.run(["classify", "--model", CLI.model] + arguments, input: input, environment: environment)
    }

    /// Blank and whitespace-only lines are skipped, CR LF endings read as LF; the lines come out
    /// in the list's order, from a file and from standard input alike.
    @Test func aListFromAFileAndFromStandardInput() throws {
        let text = Self.files[0] + "\n\n" + Self.files[1] + "\r\n   \n" + Self.files[2] + "\n"
        let expected = Array(Self.files[0..<3])
        let fromFile = try Self.classify(["--files-from", try Self.writeList(text)])
        #expect(fromFile.exited(0), "\(fromFile.stderr)")
        #expect(fromFile.lines.map { $0["file"] as? String } == expected)
        #expect(fromFile.lines.allSatisfy { $0["label"] is String })
        let fromStandardInput = try Self.classify(["--files-from", "-", "--jobs", "2"], input: Data(text.utf8))
        #expect(fromStandardInput.exited(0), "\(fromStandardInput.stderr)")
        #expect(fromStandardInput.stdout == fromFile.stdout)
        // Files named on the command line come first, then the list's.
        let both = try Self.classify([Self.files[3], "--files-from", try Self.writeList(text)])
        #expect(both.lines.map { $0["file"] as? String } == [Self.files[3]] + expected)
    }

    /// Parts 1…N are disjoint, together hold the list, and each keeps the list's order: part K
    /// is the files at 0-based positions K-1, K-1+N, …; the environment gives the same parts.
    @Test(arguments: [1, 3, 8]) func shardsAreDisjointAndCoverTheListInOrder(count: Int) throws {
        let list = try Self.writeList(Self.files.joined(separator: "\n"))
        var seen: [String] = []
        for part in 1...count {
            let result = try Self.classify(["--files-from", list, "--shard", "\(part)/\(count)"])
            #expect(result.exited(0), "\(result.stderr)")
            let files = result.lines.compactMap { $0["file"] as? String }
            #expect(files == Array(stride(from: part - 1, to: Self.files.count, by: count).map { Self.files[$0] }))
            seen += files
            let fromEnvironment = try Self.classify(
                [], environment: ["S4LISTEN_FILES_FROM": list, "S4LISTEN_SHARD": "\(part)/\(count)"])
            #expect(fromEnvironment.exited(0), "\(fromEnvironment.stderr)")
            #expect(fromEnvironment.stdout == result.stdout)
        }
        #expect(seen.count == Self.files.count)
        #expect(Set(seen) == Set(Self.files))
    }

    @Test func aMissingListFileIsAClearError() throws {
        let missing = CLI.directory.appendingPathComponent("no-such-list.txt").path
        let result = try Self.classify(["--files-from", missing])
        #expect(result.exited(1), "status \(result.status)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("\(missing): cannot read the file list: No such file or directory"), "\(result.stderr)")
    }

    @Test(arguments: ["0/3", "4/3", "3", "1/0", "-1/2", "a/b", "1/2/3", ""])
    func aBadShardIsAUsageError(shard: String) throws {
        let result = try Self.classify(["--shard=\(shard)", CLI.samples[0]])
        #expect(result.exited(64), "status \(result.status)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("--shard must be K/N"), "\(result.stderr)")
        let fromEnvironment = try Self.classify([CLI.samples[0]], environment: ["S4LISTEN_SHARD": shard.isEmpty ? "x" : shard])
        #expect(fromEnvironment.exited(64))
        #expect(fromEnvironment.stderr.contains("S4LISTEN_SHARD must be K/N"), "\(fromEnvironment.stderr)")
    }

    @Test func noFilesAndNoListIsAUsageError() throws {
        let result = try Self.classify([])
        #expect(result.exited(64))
        #expect(result.stderr.contains("give audio files, or --files-from FILE"))
    }
}
