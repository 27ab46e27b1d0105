/// Why the listening service could not start or had to stop.
public enum ServiceError: Error, CustomStringConvertible {
    case socket(path: String, reason: String)
    case model(path: String, reason: String)

    public var description: String {
        switch self {
        case .socket(let path, let reason): "event socket \(path): \(reason)"
        case .model(let path, let reason): "\(path): \(reason)"
        }
    }
}
