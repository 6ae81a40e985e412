import CgroupDriver
import Foundation
import RunnerOS
import TestSupport
import Testing

/// A runner in a cgroup delegated to it (systemd's Delegate=yes): where it finds itself, where
/// it moves, and what it writes, against fake v2 and hybrid roots.
@Suite struct CgroupDelegationTests {
    static let hybridSelf = """
        12:pids:/system.slice/fnrunner.service
        11:memory:/system.slice/fnrunner.service
        4:cpu,cpuacct:/system.slice/fnrunner.service
        3:freezer:/
        0::/system.slice/fnrunner.service
        """

    @Test func theOwnCgroupIsTheOnePathEveryUsedHierarchyAgreesOn() throws {
        let fake = try FakeCgroupRoot()
        #expect(try CgroupDelegation.ownPath(procSelfCgroup: Self.hybridSelf, layout: fake.hybridLayout) == "system.slice/fnrunner.service")
        #expect(try CgroupDelegation.ownPath(procSelfCgroup: "0::/system.slice/fnrunner.service\n", layout: fake.v2Layout)
            == "system.slice/fnrunner.service")
    }

    @Test func hierarchiesThatDisagreeOrTheRootCgroupAreRefusedWithThePathsNamed() throws {
        let fake = try FakeCgroupRoot()
        let split = Self.hybridSelf.replacingOccurrences(of: "11:memory:/system.slice/fnrunner.service", with: "11:memory:/user.slice")
        let error = #expect(throws: RunnerError.self) { try CgroupDelegation.ownPath(procSelfCgroup: split, layout: fake.hybridLayout) }
        #expect(error?.message.contains("memory /user.slice") == true, "\(String(describing: error))")
        let root = #expect(throws: RunnerError.self) { try CgroupDelegation.ownPath(procSelfCgroup: "0::/\n", layout: fake.v2Layout) }
        #expect(root?.message.contains("root cgroup") == true)
        let none = #expect(throws: RunnerError.self) { try CgroupDelegation.ownPath(procSelfCgroup: "", layout: fake.v2Layout) }
        #expect(none?.message.contains("unified") == true)
    }

    @Test func onV2TheRunnerMovesIntoALeafAndItsCgroupHandsTheControllersDown() throws {
        let fake = try FakeCgroupRoot()
        try fake.makeV2Group("system.slice/fnrunner.service")
        try fake.makeV2Group("system.slice/fnrunner.service/runner")
        let root = try CgroupDelegation.enter(
            layout: fake.v2Layout, rootName: "fnrunner", procSelfCgroup: "0::/system.slice/fnrunner.service\n", pid: 4242)
        #expect(root == "system.slice/fnrunner.service/fnrunner")
        #expect(try fake.get("system.slice/fnrunner.service/runner/cgroup.procs") == "4242")
        #expect(try fake.get("system.slice/fnrunner.service/cgroup.subtree_control") == "+memory +cpu +pids")
        // The runner's own root then takes the controllers from there, as any root does.
        try fake.makeV2Group(root)
        try fake.makeV2Group(root + "/i1")
        let driver = try CgroupDriver(layout: fake.v2Layout, rootName: root)
        try driver.prepareInstance("i1")
        #expect(try fake.get(root + "/cgroup.subtree_control") == "+memory +cpu +pids")
    }

    @Test func onAHybridHostTheRunnerMovesInEveryHierarchyAndWritesNoSubtreeControl() throws {
        let fake = try FakeCgroupRoot()
        for controller in ["memory", "cpu", "pids", "unified"] {
            try fake.put("\(controller)/system.slice/fnrunner.service/runner/cgroup.procs", "")
        }
        try fake.put("unified/system.slice/fnrunner.service/cgroup.subtree_control", "")
        let root = try CgroupDelegation.enter(layout: fake.hybridLayout, rootName: "fnrunner", procSelfCgroup: Self.hybridSelf, pid: 7)
        #expect(root == "system.slice/fnrunner.service/fnrunner")
        for controller in ["memory", "cpu", "pids", "unified"] {
            #expect(try fake.get("\(controller)/system.slice/fnrunner.service/runner/cgroup.procs") == "7", "\(controller)")
        }
        #expect(try fake.get("unified/system.slice/fnrunner.service/cgroup.subtree_control") == "")
    }
}
