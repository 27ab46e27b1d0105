import CAvahi
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A Wyoming service as zeroconf (DNS-SD over multicast DNS) announces it, which is how Home
/// Assistant discovers Wyoming services: type `_wyoming._tcp`, a name and the port.
public struct ZeroconfService: Sendable, Equatable {
    public static let type = "_wyoming._tcp"
    /// DNS-SD instance names are one DNS label: at most 63 bytes.
    public static let nameBytes = 1...63
    public let name: String
    public let port: Int

    /// The service for a TCP endpoint that other hosts can reach; nil for a loopback address, a
    /// Unix socket or stdio, which nobody elsewhere could connect to.
    public init?(endpoint: WyomingEndpoint, name: String) {
        guard case .tcp(let host, let port) = endpoint, !Self.isLoopback(host) else { return nil }
        self.name = name
        self.port = port
    }

    /// "s4listen on HOST", cut to one DNS label.
    public static var defaultName: String {
        var host = [CChar](repeating: 0, count: 256)
        let name = gethostname(&host, host.count) == 0 ? String(cString: host) : "this host"
        return String(decoding: "s4listen on \(name)".utf8.prefix(nameBytes.upperBound), as: UTF8.self)
    }

    /// localhost, 127.0.0.0/8 or ::1.
    static func isLoopback(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        if host == "localhost" { return true }
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        return withUnsafeBytes(of: &v6) { $0.dropLast().allSatisfy { $0 == 0 } && $0.last == 1 }
    }
}

/// Announces a service through the Avahi daemon (libavahi-client, over the D-Bus system bus) until
/// `stop`. Nothing here can fail `serve`: without a daemon it logs a warning and waits for one
/// (AVAHI_CLIENT_NO_FAIL), announcing once it starts; a name taken by another host is replaced by
/// Avahi's alternative ("… #2"). Avahi calls back on its own thread, which alone touches the state
/// below once `init` has returned.
public final class ZeroconfAnnouncer: @unchecked Sendable {
    public let service: ZeroconfService
    private let logger: Logger
    /// The name announced: the service's, or an alternative after a collision.
    private var name: String
    private var poll: OpaquePointer?
    private var client: OpaquePointer?
    private var group: OpaquePointer?

    /// Starts Avahi's thread, which connects to the daemon: that takes D-Bus round trips, and
    /// serving does not wait for them.
    public init(service: ZeroconfService, logger: Logger) {
        self.service = service
        self.logger = logger
        name = service.name
        guard let poll = avahi_threaded_poll_new() else {
            logger.warning("not announced by zeroconf: Avahi's event loop could not be made")
            return
        }
        let api = avahi_threaded_poll_get(poll)!
        var now = timeval()
        gettimeofday(&now, nil)
        let context = Unmanaged.passUnretained(self).toOpaque()
        let connect = api.pointee.timeout_new(
            api, &now,
            { timeout, context in
                guard let context else { return }
                Unmanaged<ZeroconfAnnouncer>.fromOpaque(context).takeUnretainedValue().connect(timeout)
            }, context)
        // Set before the thread starts: its first act, `connect`, reads it.
        self.poll = poll
        guard connect != nil, avahi_threaded_poll_start(poll) == 0 else {
            logger.warning("not announced by zeroconf: Avahi's event loop could not be started")
            avahi_threaded_poll_free(poll)
            self.poll = nil
            return
        }
    }

    /// On Avahi's thread, once: the client, which calls back as the daemon comes and goes.
    private func connect(_ timeout: OpaquePointer?) {
        guard let poll, let api = avahi_threaded_poll_get(poll) else { return }
        api.pointee.timeout_free(timeout)
        var error: Int32 = 0
        let context = Unmanaged.passUnretained(self).toOpaque()
        client = avahi_client_new(
            api, AVAHI_CLIENT_NO_FAIL,
            { client, state, context in
                guard let client, let context else { return }
                Unmanaged<ZeroconfAnnouncer>.fromOpaque(context).takeUnretainedValue().clientChanged(client, state)
            }, context, &error)
        if client == nil { logger.warning("not announced by zeroconf: \(String(cString: avahi_strerror(error)))") }
    }

    /// Withdraws the announcement (once; later calls do nothing).
    public func stop() {
        guard let poll else { return }
        avahi_threaded_poll_stop(poll)
        if let client { avahi_client_free(client) }  // frees the entry group, withdrawing it
        avahi_threaded_poll_free(poll)
        self.poll = nil
        client = nil
        group = nil
    }

    deinit { stop() }

    private var metadata: Logger.Metadata {
        ["name": "\(name)", "type": "\(ZeroconfService.type)", "port": "\(service.port)"]
    }

    private func clientChanged(_ client: OpaquePointer, _ state: AvahiClientState) {
        switch state {
        case AVAHI_CLIENT_S_RUNNING:
            register(client)
        case AVAHI_CLIENT_S_COLLISION, AVAHI_CLIENT_S_REGISTERING:
            if let group { avahi_entry_group_reset(group) }
        case AVAHI_CLIENT_CONNECTING:
            // The daemon is not running (or went away): what was registered went with it.
            if let group { avahi_entry_group_free(group) }
            group = nil
            logger.warning("no Avahi daemon running: announced by zeroconf once it starts", metadata: metadata)
        case AVAHI_CLIENT_FAILURE:
            logger.warning(
                "not announced by zeroconf: \(String(cString: avahi_strerror(avahi_client_errno(client))))",
                metadata: metadata)
        default:
            break
        }
    }

    private func groupChanged(_ group: OpaquePointer, _ state: AvahiEntryGroupState) {
        switch state {
        case AVAHI_ENTRY_GROUP_ESTABLISHED:
            logger.notice("announced by zeroconf", metadata: metadata)
        case AVAHI_ENTRY_GROUP_COLLISION:
            rename()
            avahi_entry_group_reset(group)
            if let client = avahi_entry_group_get_client(group) { register(client) }
        case AVAHI_ENTRY_GROUP_FAILURE:
            let client = avahi_entry_group_get_client(group)
            logger.warning(
                "zeroconf announcement failed: \(String(cString: avahi_strerror(avahi_client_errno(client))))",
                metadata: metadata)
        default:
            break
        }
    }

    private func register(_ client: OpaquePointer) {
        if group == nil {
            let context = Unmanaged.passUnretained(self).toOpaque()
            group = avahi_entry_group_new(
                client,
                { group, state, context in
                    guard let group, let context else { return }
                    Unmanaged<ZeroconfAnnouncer>.fromOpaque(context).takeUnretainedValue().groupChanged(group, state)
                }, context)
        }
        guard let group else {
            logger.warning(
                "not announced by zeroconf: \(String(cString: avahi_strerror(avahi_client_errno(client))))", metadata: metadata)
            return
        }
        guard avahi_entry_group_is_empty(group) != 0 else { return }
        while true {
            let status = avahi_entry_group_add_service_strlst(
                group, AvahiIfIndex(AVAHI_IF_UNSPEC), AvahiProtocol(AVAHI_PROTO_UNSPEC), AvahiPublishFlags(0), name,
                ZeroconfService.type, nil, nil, UInt16(service.port), nil)
            if status == AVAHI_ERR_COLLISION {
                rename()
                continue
            }
            if status < 0 || avahi_entry_group_commit(group) < 0 {
                logger.warning(
                    "not announced by zeroconf: \(String(cString: avahi_strerror(avahi_client_errno(client))))",
                    metadata: metadata)
            }
            return
        }
    }

    private func rename() {
        guard let alternative = avahi_alternative_service_name(name) else { return }
        let next = String(cString: alternative)
        avahi_free(alternative)
        logger.warning("zeroconf name taken on the network, announced as \(next) instead", metadata: metadata)
        name = next
    }
}
