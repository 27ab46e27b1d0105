import S4Service
import Testing

/// What `serve` announces by zeroconf, and for which endpoints.
@Suite struct ZeroconfServiceTests {
    @Test(arguments: ["0.0.0.0", "::", "192.168.1.10", "fe80::1", "kitchen.lan"])
    func aReachableTCPEndpointIsAnnouncedWithItsPort(host: String) throws {
        let service = try #require(ZeroconfService(endpoint: .tcp(host: host, port: 10401), name: "s4listen on pi"))
        #expect(ZeroconfService.type == "_wyoming._tcp")
        #expect(service.port == 10401)
        #expect(service.name == "s4listen on pi")
    }

    @Test(arguments: [
        WyomingEndpoint.tcp(host: "127.0.0.1", port: 10400), .tcp(host: "127.1.2.3", port: 10400),
        .tcp(host: "::1", port: 10400), .tcp(host: "localhost", port: 10400), .unix(path: "/run/w.sock"), .stdio,
    ])
    func whatOnlyThisHostCanReachIsNotAnnounced(endpoint: WyomingEndpoint) {
        #expect(ZeroconfService(endpoint: endpoint, name: "s4listen") == nil)
    }

    @Test func theDefaultNameIsOneDNSLabel() {
        let name = ZeroconfService.defaultName
        #expect(name.hasPrefix("s4listen on "))
        #expect(ZeroconfService.nameBytes.contains(name.utf8.count))
    }
}
