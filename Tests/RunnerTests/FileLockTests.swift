import Foundation
import RunnerOS
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `FileLock`, the flock that makes one serve own a store and guards the image store.
struct FileLockTests {
    /// A fresh lock file's path in a directory of its own; the directory goes at the end.
    private func withLockPath(_ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fnrunner-lock-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body(dir + "/store.lock")
    }

    /// The descriptor this process holds open on `path` (the lock's own), found in /proc.
    private func descriptor(of path: String) throws -> Int32 {
        for name in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            guard let fd = Int32(name) else { continue }
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)")) == path { return fd }
        }
        throw RunnerError(.notFound, "no descriptor open on \(path)", step: "find descriptor")
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
            let copy = dup(try descriptor(of: path))
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
