import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `FileLock`, the flock that makes one serve own a store and guards the image store.
struct FileLockTests {
    /// A fresh lock file's path in a directory of its own; the directory goes at the end.
    private func withLockPath(_ body: (String) throws -> Void) throws {
        let dir = "/tmp/fnrunner-test-lock-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectories(dir, mode: 0o700)
        defer { try? FileSystem.removeTree(dir) }
        try body(dir + "/store.lock")
    }

    @Test func aHeldLockRefusesASecondTakerAndNamesWhy() throws {
        try withLockPath { path in
            let held = try FileLock(path: path)
            defer { held.release() }
            #expect {
                _ = try FileLock(path: path, busyMessage: "the store is in use")
            } throws: { error in
                (error as? RunnerError)?.errno == EWOULDBLOCK && (error as? RunnerError)?.message.contains("the store is in use") == true
            }
        }
    }

    /// A child forked by another thread while the lock is held has a copy of its descriptor
    /// until the child's exec; `dup` makes the same copy here. Closing the lock's own
    /// descriptor alone then left the lock held (a test saw it: the next taker got EWOULDBLOCK).
    @Test func aReleasedLockIsFreeAtOnceEvenWhileACopyOfItsDescriptorIsStillOpen() throws {
        try withLockPath { path in
            let held = try FileLock(path: path)
            let own = try #require(Host.descriptors().first { $0.target == path }?.fd, "the lock's descriptor is open")
            let copy = dup(own)
            try #require(copy >= 0)
            defer { close(copy) }
            held.release()
            let next = try FileLock(path: path)
            next.release()
        }
    }

    @Test func aLockIsFreedWhenItsOwnerGoesAway() throws {
        try withLockPath { path in
            do { _ = try FileLock(path: path) }
            let next = try FileLock(path: path)
            next.release()
        }
    }
}
