import Logging

#if canImport(Glibc)
import Glibc
#endif

/// An accept loop out of descriptors (EMFILE, ENFILE): its listener stays readable, so it would
/// spin and log at every turn. Instead the shortage is logged when it starts and when it ends
/// (with how many accepts failed), and the listener is left out of the poll until `retryAt`.
struct DescriptorShortage {
    static let pause = Duration.milliseconds(100)
    /// What is accepting, for the log ("Wyoming server", "event socket").
    let what: String
    /// While short: when to try accepting again.
    private(set) var retryAt: ContinuousClock.Instant?
    private var failures = 0

    init(what: String) { self.what = what }

    /// Whether the listener should be left out of the next poll, and for how long at most.
    var wait: Duration? {
        guard let retryAt else { return nil }
        return max(.zero, retryAt - .now)
    }

    /// An accept that failed with `code` (other failures than a want of descriptors pass).
    mutating func failed(_ code: Int32, logger: Logger) {
        guard code == EMFILE || code == ENFILE else { return }
        if retryAt == nil {
            logger.error("\(what) cannot accept clients: \(String(cString: strerror(code))); new clients wait until some close")
        }
        failures += 1
        retryAt = .now + Self.pause
    }

    /// An accept that succeeded: the end of a shortage, if there was one.
    mutating func accepted(logger: Logger) {
        guard retryAt != nil else { return }
        logger.notice("\(what) accepts clients again", metadata: ["failed_accepts": "\(failures)"])
        retryAt = nil
        failures = 0
    }
}
