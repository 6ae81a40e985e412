import RunnerOS

/// A shared claim on an image store by a process that is pulling into it or running containers
/// from it. Garbage collection in any process removes data only when no other process holds
/// one, so `fnrunner rmi` can never delete the layers under a running `fnrunner run` or the
/// blobs of a pull in flight; the data waits for the next collection instead.
public final class StoreLease: Sendable {
    private let lock: FileLock

    init(path: String, exclusive: Bool, wait: Bool) throws(RunnerError) {
        lock = try FileLock(path: path, exclusive: exclusive, wait: wait, busyMessage: "the image store is in use")
    }

    public func release() { lock.release() }
}
