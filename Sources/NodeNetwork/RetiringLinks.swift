import Logging
import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Veths of containers that ended, whose addresses stay leased until the veth is gone.
///
/// Why not delete each veth at once: an RTM_DELLINK of a veth waits for RCU grace periods under
/// the kernel's rtnl lock (12-50 ms measured here), which would stall every other start's
/// netlink work behind it. When the container's namespace ends, the kernel removes its veth
/// pair in the background, many at a time; the address is handed out again only after that.
final class RetiringLinks: Sendable {
    private struct Entry {
        let address: IPv4Address
        let link: String
        let since: UInt64
    }
    private let entries = Mutex<[Entry]>([])
    private let socket: RouteSocket
    private let leases: AddressLeases
    private let logger: Logger
    /// After this long a veth that is still there is deleted outright (something kept its
    /// namespace alive).
    static let patienceNanos: UInt64 = 5_000_000_000

    init(socket: RouteSocket, leases: AddressLeases, logger: Logger) {
        self.socket = socket
        self.leases = leases
        self.logger = logger
    }

    func add(_ address: IPv4Address, link: String) {
        entries.withLock { $0.append(Entry(address: address, link: link, since: MonotonicClock.nowNanos())) }
    }

    var count: Int { entries.withLock { $0.count } }

    /// Releases the leases whose veths are gone; with `force`, or once past patience, deletes
    /// what is still there. Returns how many are left.
    @discardableResult
    func reap(force: Bool = false) -> Int {
        let now = MonotonicClock.nowNanos()
        // Taken out under the lock: two reaps at once never both release one address (the
        // second could release, or delete the veth of, the address's next holder).
        let due = entries.withLock { list -> [Entry] in
            defer { list = [] }
            return list
        }
        var left: [Entry] = []
        for entry in due {
            do {
                if try socket.linkIndex(entry.link) != nil {
                    guard force || now &- entry.since > Self.patienceNanos else {
                        left.append(entry)
                        continue
                    }
                    try socket.deleteLink(named: entry.link)
                }
                leases.release(entry.address)
            } catch {
                left.append(entry)
                logger.error("cannot remove a retired veth; its address stays leased", metadata: ["link": "\(entry.link)", "error": "\(error)"])
            }
        }
        return entries.withLock { list in
            list += left
            return list.count
        }
    }

    /// Waits (bounded) until every retired veth is gone, then deletes what is left.
    func settle(timeoutMillis: Int) {
        let deadline = MonotonicClock.nowNanos() + UInt64(timeoutMillis) * 1_000_000
        while reap() > 0 && MonotonicClock.nowNanos() < deadline { usleep(2000) }
        reap(force: true)
    }
}
