import CNetlink
import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A NETLINK_ROUTE socket bound to one network namespace, one request at a time.
///
/// Why a socket per namespace and not `setns` around each request: a netlink socket keeps the
/// namespace it was made in, so the runner's threads never leave their own namespace.
final class RouteSocket: Sendable {
    private let fd: Mutex<Int32>

    /// Opens a socket in the namespace `namespaceFD` (nil: the runner's own).
    init(namespaceFD: Int32?, purpose: String) throws(RunnerError) {
        let rc = rn_nl_open(namespaceFD ?? -1)
        if rc < 0 { throw .system("socket(NETLINK_ROUTE)", errno: -rc, "cannot open a netlink socket \(purpose)") }
        fd = Mutex(rc)
    }

    deinit { fd.withLock { _ = close($0) } }

    /// Runs one request; a negative result becomes an error naming `step` and `what`.
    @discardableResult
    func call(_ step: String, _ what: @autoclosure () -> String, _ body: (Int32) -> Int32) throws(RunnerError) -> Int32 {
        let rc = fd.withLock { body($0) }
        if rc < 0 { throw .system(step, errno: -rc, what()) }
        return rc
    }

    /// A link's index, or nil when no link has that name.
    func linkIndex(_ name: String) throws(RunnerError) -> Int32? {
        let rc = fd.withLock { rn_nl_link_index($0, name) }
        if rc == -ENODEV { return nil }
        if rc < 0 { throw .system("RTM_GETLINK", errno: -rc, "cannot look up link \(name)") }
        return rc
    }

    func linkInfo(_ index: Int32) throws(RunnerError) -> rn_link_info {
        var info = rn_link_info()
        try call("RTM_GETLINK", "cannot read link \(index)") { rn_nl_link_info($0, index, &info) }
        return info
    }

    /// A link's byte counters alone, by index (what a call's stats read twice).
    func linkBytes(_ index: Int32) throws(RunnerError) -> rn_link_info {
        var info = rn_link_info()
        try call("RTM_GETSTATS", "cannot read the counters of link \(index)") { rn_nl_link_bytes($0, index, &info) }
        return info
    }

    /// Deletes a link by name; false when there was none.
    @discardableResult
    func deleteLink(named name: String) throws(RunnerError) -> Bool {
        let rc = fd.withLock { rn_nl_link_delete($0, 0, name) }
        if rc == -ENODEV { return false }
        if rc < 0 { throw .system("RTM_DELLINK", errno: -rc, "cannot delete link \(name)") }
        return true
    }

    struct Route {
        let destination: IPv4Network
        let linkIndex: Int32
        let gateway: IPv4Address?
    }

    /// The IPv4 routes of the main table.
    func routes() throws(RunnerError) -> [Route] {
        var buffer = [rn_route](repeating: rn_route(), count: 1024)
        let n = try call("RTM_GETROUTE", "cannot list the node's routes") { fd in
            buffer.withUnsafeMutableBufferPointer { rn_nl_routes(fd, $0.baseAddress, Int32($0.count)) }
        }
        return buffer.prefix(Int(min(n, 1024))).map { r in
            Route(
                destination: IPv4Network(base: IPv4Address(UInt32(bigEndian: r.dst)), prefix: Int(r.prefix)),
                linkIndex: r.oif, gateway: r.gateway == 0 ? nil : IPv4Address(UInt32(bigEndian: r.gateway)))
        }
    }
}
