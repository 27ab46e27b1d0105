/// Why the listening service could not start or had to stop.
public enum ServiceError: Error, CustomStringConvertible {
    case socket(path: String, reason: String)
    /// The Wyoming server's `--uri`: unparsable, or it cannot be bound.
    case endpoint(uri: String, reason: String)

    public var description: String {
        switch self {
        case .socket(let path, let reason): "event socket \(path): \(reason)"
        case .endpoint(let uri, let reason): "\(uri): \(reason)"
        }
    }
}
