import RunnerOS
import TestSupport
import XCTest

@testable import NodeNetwork

final class AddressingTests: XCTestCase {
    func testASubnetParsesAndNamesItsGatewayAndContainerRange() throws {
        let net = try IPv4Network(parsing: "10.89.0.0/16")
        XCTAssertEqual(net.gateway.description, "10.89.0.1")
        XCTAssertEqual(net.broadcast.description, "10.89.255.255")
        XCTAssertEqual(IPv4Address(net.containerAddresses.lowerBound).description, "10.89.0.2")
        XCTAssertEqual(IPv4Address(net.containerAddresses.upperBound).description, "10.89.255.254")
        XCTAssertTrue(net.contains(IPv4Address("10.89.200.3")!))
        XCTAssertFalse(net.contains(IPv4Address("10.90.0.1")!))
    }

    func testMalformedSubnetsAreRefusedWithTheReason() {
        for (text, reason) in [
            ("10.89.0.0", "is not an IPv4 prefix"), ("10.89.0/16", "is not an IPv4 prefix"), ("300.1.1.0/24", "is not an IPv4 prefix"),
            ("10.89.0.0/31", "prefix length"), ("10.0.0.0/4", "prefix length"), ("10.89.0.1/16", "did you mean 10.89.0.0/16"),
        ] {
            XCTAssertThrowsError(try IPv4Network(parsing: text), text) { error in
                let e = error as! RunnerError
                XCTAssertEqual(e.code, .invalidArgument)
                XCTAssertTrue(e.message.contains(reason), "\(text): \(e.message)")
            }
        }
    }

    func testOverlapCoversContainmentBothWaysAndNothingElse() throws {
        let net = try IPv4Network(parsing: "10.89.0.0/16")
        XCTAssertTrue(net.overlaps(try IPv4Network(parsing: "10.0.0.0/8")))
        XCTAssertTrue(net.overlaps(try IPv4Network(parsing: "10.89.3.0/24")))
        XCTAssertFalse(net.overlaps(try IPv4Network(parsing: "10.88.0.0/16")))
        XCTAssertFalse(net.overlaps(try IPv4Network(parsing: "192.168.0.0/16")))
    }

    func testARouteOverlappingTheSubnetRefusesTheBridgeAndNamesTheRoute() throws {
        let net = try IPv4Network(parsing: "10.89.0.0/16")
        let clash = RouteSocket.Route(destination: try IPv4Network(parsing: "10.89.4.0/24"), linkIndex: 7, gateway: nil)
        let own = RouteSocket.Route(destination: net, linkIndex: 3, gateway: nil)
        let defaultRoute = RouteSocket.Route(
            destination: IPv4Network(base: IPv4Address(0), prefix: 0), linkIndex: 2, gateway: IPv4Address("192.0.2.1"))
        XCTAssertNoThrow(try BridgeNetwork.refuseClashingRoutes([own, defaultRoute], subnet: net, bridgeIndex: 3, bridge: "br"))
        XCTAssertThrowsError(try BridgeNetwork.refuseClashingRoutes([own, clash], subnet: net, bridgeIndex: 3, bridge: "br")) {
            XCTAssertTrue(($0 as! RunnerError).message.contains("10.89.4.0/24"))
        }
    }

    func testLeasesNeverHandOutAnAddressTwiceAndReportExhaustion() throws {
        let dir = try ScratchDirectory()
        let net = try IPv4Network(parsing: "10.89.7.0/29")  // .2 ... .6: five addresses
        let a = try AddressLeases(directory: dir.path + "/leases", subnet: net, owner: "i1")
        let b = try AddressLeases(directory: dir.path + "/leases", subnet: net, owner: "i2")
        var seen = Set<IPv4Address>()
        for i in 0..<5 { XCTAssertTrue(seen.insert(i % 2 == 0 ? try a.acquire() : try b.acquire()).inserted) }
        XCTAssertThrowsError(try a.acquire()) { XCTAssertTrue(($0 as! RunnerError).message.contains("in use")) }
        let released = seen.first!
        a.release(released)
        XCTAssertEqual(try b.acquire(), released)
        XCTAssertEqual(Set(try a.all().map { $0.owner }), ["i1", "i2"])
    }

    func testResolvConfDropsLoopbackServersForTheUpstreamOnesAndKeepsSearch() throws {
        let dir = try ScratchDirectory()
        try FileSystem.create(dir.path + "/stub", contents: "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.test\n")
        try FileSystem.create(dir.path + "/upstream", contents: "nameserver 192.0.2.53\nnameserver 127.0.0.1\n")
        let made = NameFiles.resolvConf(from: dir.path + "/stub", upstreamSource: dir.path + "/upstream")
        XCTAssertEqual(made.servers, ["192.0.2.53"])
        XCTAssertTrue(made.text.contains("nameserver 192.0.2.53\n"))
        XCTAssertTrue(made.text.contains("search example.test\n"))
        XCTAssertFalse(made.text.contains("127.0.0"))
    }

    func testTheRulesetRefusesEachPathUnlessItsOptInIsGiven() {
        var config = FunctionNetworkConfiguration(bridgeName: "fnt-br")
        var firewall = NodeFirewall(configuration: config, namespaceFD: -1, instanceID: "i1")
        firewall.nameServers = [IPv4Address("169.254.169.253")!]
        let closed = firewall.ruleset
        XCTAssertTrue(closed.contains("table inet fnrunner_fnt_2dbr_i1"))
        XCTAssertTrue(closed.contains("iifname \"fnt-br\" meta l4proto tcp reject"))
        XCTAssertTrue(closed.contains("iifname \"fnt-br\" oifname \"fnt-br\" meta l4proto tcp reject"))
        XCTAssertTrue(closed.contains("ip daddr 169.254.0.0/16 meta l4proto tcp reject"))
        XCTAssertTrue(closed.contains("ct status dnat meta l4proto tcp reject"), "a port the node publishes by DNAT is the node's")
        XCTAssertTrue(closed.contains("meta nfproto ipv6 reject"))
        XCTAssertTrue(closed.contains("ct state invalid drop"))
        XCTAssertTrue(closed.contains("ip saddr 10.89.0.0/16 oifname != \"fnt-br\" masquerade"))
        XCTAssertFalse(closed.contains("iifname != \"fnt-br\" oifname != \"fnt-br\" drop"))
        // The name server stays reachable on port 53, ahead of the wall that refuses its range.
        let dns = closed.range(of: "ip daddr { 169.254.169.253 } meta l4proto { tcp, udp } th dport 53 accept")
        let metadata = closed.range(of: "ip daddr 169.254.0.0/16")
        XCTAssertNotNil(dns)
        XCTAssertTrue(dns!.lowerBound < metadata!.lowerBound)
        config.allowNode = true
        config.allowMetadata = true
        config.allowFunctions = true
        firewall = NodeFirewall(configuration: config, namespaceFD: -1, instanceID: "i1")
        firewall.forwardsOnlyTheBridge = true
        let open = firewall.ruleset
        XCTAssertFalse(open.contains("169.254.0.0/16") || open.contains("ct status dnat") || open.contains("oifname \"fnt-br\" meta"))
        XCTAssertTrue(open.contains("meta nfproto ipv6 reject"), "IPv6 stays off whatever the opt-ins")
        XCTAssertTrue(open.contains("iifname != \"fnt-br\" oifname != \"fnt-br\" drop"), "a node fnrunner made a router forwards only the bridge")
    }

    func testTableNamesAreOneToOneWithBridgeNames() {
        let names = ["a-b", "a_b", "a.b", "ab"].map { NodeFirewall.tableName(bridge: $0, instance: "i1") }
        XCTAssertEqual(Set(names).count, 4, "\(names)")
    }

    func testOptInListsAcceptKnownNamesAndNameAnUnknownOne() throws {
        var config = FunctionNetworkConfiguration()
        try config.allow("node, metadata")
        XCTAssertTrue(config.allowNode && config.allowMetadata && !config.allowFunctions)
        XCTAssertThrowsError(try config.allow("node,internet")) { XCTAssertTrue(($0 as! RunnerError).message.contains("\"internet\"")) }
        XCTAssertThrowsError(try FunctionNetworkConfiguration(bridgeName: "a-name-that-is-too-long").validate())
    }
}

/// A directory for one test, removed when it goes.
final class ScratchDirectory {
    let path: String
    init() throws {
        path = "/tmp/fnrunner-nettest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectories(path)
    }
    deinit { try? FileSystem.removeTree(path) }
}
