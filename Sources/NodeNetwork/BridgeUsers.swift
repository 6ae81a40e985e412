import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The runner instances using one bridge, each recorded by a file named for it. A bridge that
/// fnrunner made goes with the last live user; a crashed user's table and record are removed
/// by the next instance that opens the bridge.
struct BridgeUsers {
    let directory: String

    init(directory: String) throws(RunnerError) {
        self.directory = directory
        try FileSystem.makeDirectories(directory, mode: 0o700)
    }

    func join(_ instance: String) throws(RunnerError) { try FileSystem.create(directory + "/" + instance, contents: "") }

    func leave(_ instance: String) { _ = unlink(directory + "/" + instance) }

    /// The other users, split by whether their runner still lives.
    func others(than instance: String, isLive: (String) -> Bool) -> (live: [String], dead: [String]) {
        let all = ((try? FileSystem.list(directory)) ?? []).filter { $0 != instance }
        return (all.filter(isLive), all.filter { !isLive($0) })
    }
}
