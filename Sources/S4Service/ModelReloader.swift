import Dispatch
import Foundation
import Logging
import S4Core

/// SIGHUP reloads the model file, for `listen` and `serve` alike: the file is loaded again and
/// checked; a good one is handed to the caller (which swaps it in between utterances), a bad one
/// is refused with a log line and a systemd STATUS, and the running model stays.
public struct ModelReloader: Sendable {
    /// Loads (or reloads) the model; throws a readable error for a bad file.
    public typealias Loader = @Sendable () throws -> S4Model

    private let load: Loader
    private let logger: Logger
    private let notifier: SystemdNotifier

    public init(load: @escaping Loader, logger: Logger, notifier: SystemdNotifier) {
        self.load = load
        self.logger = logger
        self.notifier = notifier
    }

    /// The model file loaded again, or nil when it was refused (logged; the caller keeps its model).
    public func reload() -> S4Model? {
        do {
            let next = try load()
            logger.notice(
                "model reloaded",
                metadata: [
                    "parameters": "\(next.parameterCount)",
                    "detection_threshold": "\(next.metadata.detectionThreshold.map { "\($0)" } ?? "none")",
                ])
            notifier.notify("STATUS=model reloaded")
            return next
        } catch {
            logger.error("model reload refused, the running model stays: \(error)")
            notifier.notify("STATUS=model reload refused: \(error)")
            return nil
        }
    }

    /// Calls `handler` on each SIGHUP (instead of the signal's default, ending the process) until
    /// the returned source is cancelled.
    public static func onHangup(_ handler: @escaping @Sendable () -> Void) -> DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP)
        source.setEventHandler(handler: handler)
        source.resume()
        return source
    }
}
