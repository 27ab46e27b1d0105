/// Why the listening service could not start or had to stop.
public enum ServiceError: Error, CustomStringConvertible {
    case socket(path: String, reason: String)

    public var description: String {
        switch self {
        case .socket(let path, let reason): "event socket \(path): \(reason)"
        }
    }
}
