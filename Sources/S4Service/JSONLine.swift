import Foundation

/// A JSON value written with keys in the order given, one object per output line (JSON Lines).
public enum JSONLine: Sendable {
    case string(String)
    case number(Double)
    /// A number with three decimals (times in seconds).
    case fixed(Double)
    case integer(Int)
    case bool(Bool)
    case array([JSONLine])
    case object([(String, JSONLine)])
    /// Already-serialised JSON, inserted as is.
    case raw(String)

    public var text: String {
        switch self {
        case .string(let s): return Self.quote(s)
        case .number(let x): return x.isFinite ? String(format: "%.6g", x) : "null"
        case .fixed(let x): return x.isFinite ? String(format: "%.3f", x) : "null"
        case .integer(let n): return String(n)
        case .bool(let b): return b ? "true" : "false"
        case .array(let items): return "[" + items.map(\.text).joined(separator: ",") + "]"
        case .object(let pairs): return "{" + pairs.map { Self.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        case .raw(let json): return json
        }
    }

    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Writes the value and a newline to standard output at once (no buffering), so a reader sees
    /// each line as it happens. Returns false when standard output is a closed pipe (the reader
    /// is gone: the run ends cleanly); any other failure (a full disk, an I/O error) is an error,
    /// never a silent loss.
    @discardableResult
    public func emit() throws(OutputError) -> Bool {
        let line = Array((text + "\n").utf8)
        var offset = 0
        while offset < line.count {
            let written = line.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE { return false }
                throw OutputError(reason: String(cString: strerror(errno)))
            }
            offset += written
        }
        return true
    }
}

/// Flushes what `print` buffered on standard output; a failure is the caller's error.
public func flushStandardOutput() throws(OutputError) {
    // fflush(NULL) flushes every C stream, standard output among them, and reports a failed write.
    if fflush(nil) != 0 {
        throw OutputError(reason: String(cString: strerror(errno)))
    }
}

/// Standard output could not be written: the results would be lost.
public struct OutputError: Error, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { "cannot write to standard output: \(reason)" }
}
