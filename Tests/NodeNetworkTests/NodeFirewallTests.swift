import RunnerOS
import TestSupport
import XCTest

@testable import NodeNetwork

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

final class NodeFirewallTests: XCTestCase {
    /// libnftables waits for the kernel's acks with select(), whose fd_set holds descriptors
    /// below 1024 only; glibc aborts the whole process on a higher one. A busy node's runner holds
    /// that many (sockets, pipes, pidfds), so its tables must load all the same.
    func testTheTablesLoadAndGoWhileTheRunnerHoldsMoreThan1024Descriptors() async throws {
        guard NetworkLab.isAvailable else { throw XCTSkip("needs root, ip and nsenter to make a network namespace") }
        let lab = try await NetworkLab("fds")
        defer { lab.cleanUp() }
        let nsFD = open(lab.nodePath, O_RDONLY | O_CLOEXEC)
        // Never -1: that would put the table into this machine's own namespace.
        guard nsFD >= 0 else { return XCTFail("open \(lab.nodePath): errno \(errno)") }
        defer { close(nsFD) }

        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        defer { setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
        let held = try holdDescriptors(until: 1100)
        defer { held.forEach { close($0) } }
        let openBefore = try openDescriptorCount()

        let firewall = NodeFirewall(configuration: FunctionNetworkConfiguration(bridgeName: "fnt-fds"), namespaceFD: nsFD, instanceID: "i1")
        try firewall.install()
        let installed = try await lab.nodeRuleset()
        XCTAssertTrue(installed.contains("table inet \(firewall.tableName)"), installed)
        try firewall.remove()
        let removed = try await lab.nodeRuleset()
        XCTAssertFalse(removed.contains(firewall.tableName), removed)
        XCTAssertEqual(try openDescriptorCount(), openBefore, "nftables' socket and files end with its thread")
    }

    /// Opens /dev/null until a descriptor numbered at least `number` is open (raising the soft
    /// limit when it is lower); the caller closes them and restores the limit.
    private func holdDescriptors(until number: Int32) throws -> [Int32] {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let wanted = rlim_t(number) + 256
        if limit.rlim_cur < wanted {
            guard limit.rlim_max >= wanted else { throw XCTSkip("RLIMIT_NOFILE's hard limit \(limit.rlim_max) is below \(wanted)") }
            limit.rlim_cur = wanted
            XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit), 0, "setrlimit")
        }
        var held: [Int32] = []
        while held.last.map({ $0 < number }) ?? true {
            let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let error = errno
                held.forEach { close($0) }
                throw RunnerError(.system, "open /dev/null failed after \(held.count) descriptors", step: "hold descriptors", errno: error)
            }
            held.append(fd)
        }
        return held
    }

    private func openDescriptorCount() throws -> Int { try FileSystem.list("/proc/self/fd").count }
}
