import CgroupDriver
import Freezer
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The freezer's file protocol against fake files (the kernel's side is played by the test).
@Suite struct FreezerFormatTests {
    func tempDir() throws -> String {
        let dir = "/tmp/fnrunner-fake-freezer-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectories(dir)
        return dir
    }

    @Test func v2FreezeWritesOneAndReturnsWhenEventsSayFrozen() throws {
        let dir = try tempDir()
        defer { try? FileSystem.removeTree(dir) }
        try FileSystem.create(dir + "/cgroup.freeze", contents: "0")
        try FileSystem.create(dir + "/cgroup.events", contents: "populated 1\nfrozen 1\n")
        let freezer = Freezer(backend: .v2(dir))
        try freezer.freeze()
        #expect(try FileSystem.read(dir + "/cgroup.freeze") == "1")
        #expect(try freezer.state() == .frozen)
    }

    @Test func v2FreezeTimesOutWithAClearErrorWhenTheKernelNeverConfirms() throws {
        let dir = try tempDir()
        defer { try? FileSystem.removeTree(dir) }
        try FileSystem.create(dir + "/cgroup.freeze", contents: "0")
        try FileSystem.create(dir + "/cgroup.events", contents: "populated 1\nfrozen 0\n")
        let error = #expect(throws: RunnerError.self) { try Freezer(backend: .v2(dir)).freeze(timeoutMillis: 30) }
        #expect(error?.code == .timeout)
        #expect(error?.step == "freeze")
    }

    @Test func aThawWithoutSleepingAsksAndIsNilUntilTheKernelConfirms() throws {
        let dir = try tempDir()
        defer { try? FileSystem.removeTree(dir) }
        try FileSystem.create(dir + "/cgroup.freeze", contents: "1")
        try FileSystem.create(dir + "/cgroup.events", contents: "populated 1\nfrozen 1\n")
        let freezer = Freezer(backend: .v2(dir))
        // The fake kernel has not thawed yet: the caller must wait elsewhere, not here.
        #expect(try freezer.thawWithoutSleeping(spins: 5) == nil)
        #expect(try FileSystem.read(dir + "/cgroup.freeze") == "0", "the thaw was asked for")
        try FileSystem.write(dir + "/cgroup.events", "populated 1\nfrozen 0\n")
        #expect(try freezer.thawWithoutSleeping() != nil)
        #expect(try freezer.state() == .thawed)
    }

    @Test func v1ThawWritesThawedAndReadsFreezerState() throws {
        let dir = try tempDir()
        defer { try? FileSystem.removeTree(dir) }
        try FileSystem.create(dir + "/freezer.state", contents: "FROZEN\n")
        let freezer = Freezer(backend: .v1(dir))
        #expect(try freezer.state() == .frozen)
        // A regular file keeps what was written, so "THAWED" reads back as thawed.
        try freezer.thaw()
        #expect(try freezer.state() == .thawed)
    }

    @Test func theV2BackendIsPreferredWhenTheCgroupHasCgroupFreeze() throws {
        let dir = try tempDir()
        defer { try? FileSystem.removeTree(dir) }
        try FileSystem.create(dir + "/cgroup.freeze", contents: "0")
        let cg = CgroupSet(relativePath: "x", v2Path: dir, v1Paths: ["freezer": "/nonexistent"])
        #expect(try Freezer(cgroup: cg).backend == .v2(dir))
        let v1Only = CgroupSet(relativePath: "x", v2Path: nil, v1Paths: ["freezer": dir])
        #expect(try Freezer(cgroup: v1Only).backend == .v1(dir))
        #expect(throws: RunnerError.self) { try Freezer(cgroup: CgroupSet(relativePath: "x", v2Path: nil, v1Paths: [:])) }
    }
}
