import Foundation

/// The files of a batch job: read from a list (one path a line) and cut into parts, so that a
/// scheduler runs one part per machine (a Kubernetes indexed Job, a Slurm array) and the parts'
/// outputs, concatenated, hold every file once.
public enum FileList {
    /// The paths in `path` (`-`: standard input), one a line; blank lines are ignored, a trailing
    /// carriage return is dropped, anything else (spaces included) is part of the path.
    public static func read(_ path: String) throws(FileListError) -> [String] {
        if path == "-" { return parse(String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)) }
        func failure(_ reason: String) -> FileListError {
            FileListError(description: "\(path): cannot read the file list: \(reason)")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(fd) }
        var status = stat()
        if fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFDIR { throw failure("is a directory") }
        var bytes: [UInt8] = []
        var block = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = block.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure(String(cString: strerror(errno)))
            }
            if count == 0 { break }
            bytes += block[0..<count]
        }
        return parse(String(decoding: bytes, as: UTF8.self))
    }

    /// The paths in a list's text (lines end with LF or CR LF).
    public static func parse(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).compactMap { line in line.allSatisfy(\.isWhitespace) ? nil : String(line) }
    }
}

/// A file list that cannot be read.
public struct FileListError: Error, CustomStringConvertible {
    public let description: String
}

/// Part K of N of a list, K counted from 1 (`--shard 1/4` … `--shard 4/4`): the item at 0-based
/// position i belongs to part i mod N + 1. Parts are disjoint, together hold the whole list, keep
/// its order, and differ in length by at most one.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// `K/N` with 1 ≤ K ≤ N; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, (1...n).contains(k) else { return nil }
        index = k
        count = n
    }

    public var description: String { "\(index)/\(count)" }

    /// This part of `items`, in their order.
    public func select<T>(_ items: [T]) -> [T] {
        stride(from: index - 1, to: items.count, by: count).map { items[$0] }
    }
}
