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
    /// each line as it happens. Returns false when standard output is closed (a broken pipe).
    @discardableResult
    public func emit() -> Bool {
        let line = Array((text + "\n").utf8)
        return line.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }
}
