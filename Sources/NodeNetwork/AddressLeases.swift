import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Container addresses of the function subnet, each held as a file named for the address in a
/// directory on the state tmpfs, made with O_EXCL and holding its runner instance's id.
///
/// Why files: an address outlives a crash of the runner that held it (its veth may still be on
/// the bridge), and two runner instances may share a bridge. O_EXCL makes a duplicate
/// impossible across both; the owner's id tells the next runner which leases are stale.
final class AddressLeases: Sendable {
    let directory: String
    let subnet: IPv4Network
    let owner: String
    /// Where the next search starts: just after the last address handed out, so an address
    /// just released is the last to be reused (a peer's ARP cache may still name its old MAC).
    private let cursor: Mutex<UInt32>

    /// A file holding the owner's id, linked to each lease's name.
    private let ownerFile: String

    init(directory: String, subnet: IPv4Network, owner: String) throws(RunnerError) {
        self.directory = directory
        self.subnet = subnet
        self.owner = owner
        self.cursor = Mutex(subnet.containerAddresses.lowerBound)
        try FileSystem.makeDirectories(directory + "/.owners", mode: 0o700)
        ownerFile = directory + "/.owners/" + owner
        try FileSystem.create(ownerFile, contents: owner, mode: 0o600)
    }

    /// Removes the owner file (the leases keep their own links to it).
    func close() { _ = unlink(ownerFile) }

    /// Removes a gone owner's file, once its leases are released.
    func forget(owner other: String) { _ = unlink(directory + "/.owners/" + other) }

    func path(_ address: IPv4Address) -> String { directory + "/" + address.description }

    /// Takes a free address; throws when all are taken.
    func acquire() throws(RunnerError) -> IPv4Address {
        let range = subnet.containerAddresses
        let count = UInt32(range.count)
        let start = cursor.withLock { $0 }
        for step in 0..<count {
            let value = range.lowerBound + (start - range.lowerBound + step) % count
            let address = IPv4Address(value)
            // link(2) of a file already holding the owner publishes the lease whole and only
            // if the name is free (no one ever reads a lease without its owner).
            if link(ownerFile, path(address)) != 0 {
                if errno == EEXIST { continue }
                throw .system("link", errno: errno, "cannot record the lease of \(address) in \(directory)")
            }
            cursor.withLock { $0 = value == range.upperBound ? range.lowerBound : value + 1 }
            return address
        }
        throw RunnerError(
            .unavailable, "every address of the function subnet \(subnet) is in use (\(count) containers)",
            step: "lease address")
    }

    func release(_ address: IPv4Address) { _ = unlink(path(address)) }

    /// Every lease on record with its owner.
    func all() throws(RunnerError) -> [(address: IPv4Address, owner: String)] {
        try FileSystem.list(directory).compactMap { name in
            guard let address = IPv4Address(name) else { return nil }
            let owner = (try? FileSystem.read(directory + "/" + name))?.trimmed ?? ""
            return (address, owner)
        }
    }
}
