import CgroupDriver
import NativeRuntime
import Runner
import RunnerOS
import Testing

@Suite struct ResourceTrackerTests {
    let mb: UInt64 = 1 << 20

    @Test func aFullNodeMakesABlockingRequestTimeOutUntilATokenIsReleased() async {
        let tracker = ResourceTracker(totalMemoryBytes: 1024 * mb, totalCPUMillicores: 2000)
        let first = await tracker.acquire(memoryBytes: 1024 * mb, cpuMillicores: 2000)
        #expect(first != nil)
        #expect(await tracker.acquire(memoryBytes: 1024 * mb, cpuMillicores: 2000, timeout: .milliseconds(50)) == nil)
        #expect(tracker.waiterCount == 0, "a timed-out waiter is gone")
        async let second = tracker.acquire(memoryBytes: 1024 * mb, cpuMillicores: 2000, timeout: .seconds(10))
        while tracker.waiterCount == 0 { await Task.yield() }
        first?.release()
        let granted = await second
        #expect(granted != nil)
        granted?.release()
        #expect(tracker.utilization == .init(memoryUsedBytes: 0, memoryAvailableBytes: 1024 * mb, cpuUsedMillicores: 0, cpuAvailableMillicores: 2000))
    }

    @Test func aNonBlockingRequestSaysHowMuchIsMissingInWholeMiB() {
        let tracker = ResourceTracker(totalMemoryBytes: 1024 * mb, totalCPUMillicores: 1000)
        guard case .success(let t) = tracker.tryAcquire(memoryBytes: 600 * mb, cpuMillicores: 600) else {
            Issue.record("the first request fits")
            return
        }
        switch tracker.tryAcquire(memoryBytes: 600 * mb + mb / 2, cpuMillicores: 500) {
        case .success: Issue.record("must not fit")
        case .failure(let full):
            // 176.5 MiB short: integer division gives 176, as in Fn.
            #expect(full == ResourceTracker.CapacityFull(neededMemoryMB: 176, neededCPUMillicores: 100))
        }
        t.release()
        if case .failure = tracker.tryAcquire(memoryBytes: 600 * mb, cpuMillicores: 500) { Issue.record("fits after release") }
    }

    @Test func aRequestLargerThanTheNodeIsImpossibleAndNeverWaits() async {
        let tracker = ResourceTracker(totalMemoryBytes: 512 * mb, totalCPUMillicores: 1000)
        #expect(!tracker.isPossible(memoryBytes: 513 * mb, cpuMillicores: 0))
        #expect(!tracker.isPossible(memoryBytes: 1, cpuMillicores: 1001))
        #expect(await tracker.acquire(memoryBytes: 513 * mb, cpuMillicores: 0) == nil)
        #expect(tracker.waiterCount == 0)
        if case .failure(let f) = tracker.tryAcquire(memoryBytes: 513 * mb, cpuMillicores: 10) {
            #expect(f.neededMemoryMB == 513 && f.neededCPUMillicores == 10)
        } else {
            Issue.record("impossible requests fail")
        }
    }

    @Test func tokensAreReleasedExactlyOnce() {
        let tracker = ResourceTracker(totalMemoryBytes: 100 * mb, totalCPUMillicores: 100)
        guard case .success(let a) = tracker.tryAcquire(memoryBytes: 60 * mb, cpuMillicores: 60),
            case .success(let b) = tracker.tryAcquire(memoryBytes: 40 * mb, cpuMillicores: 40)
        else {
            Issue.record("both fit")
            return
        }
        a.release()
        a.release()
        #expect(tracker.utilization.memoryUsedBytes == 40 * mb)
        #expect(a.isReleased && !b.isReleased)
        b.release()
        #expect(tracker.utilization.memoryUsedBytes == 0 && tracker.utilization.cpuUsedMillicores == 0)
    }

    @Test func aCancelledWaiterLeavesAndGetsNothing() async {
        let tracker = ResourceTracker(totalMemoryBytes: 10 * mb, totalCPUMillicores: 10)
        let hold = await tracker.acquire(memoryBytes: 10 * mb, cpuMillicores: 10)
        let waiter = Task { await tracker.acquire(memoryBytes: 10 * mb, cpuMillicores: 10) }
        while tracker.waiterCount == 0 { await Task.yield() }
        waiter.cancel()
        #expect(await waiter.value == nil)
        #expect(tracker.waiterCount == 0)
        hold?.release()
        #expect(tracker.utilization.memoryUsedBytes == 0)
    }

    @Test func aReleaseGrantsEveryWaiterThatNowFits() async {
        let tracker = ResourceTracker(totalMemoryBytes: 100 * mb, totalCPUMillicores: 1000)
        let big = await tracker.acquire(memoryBytes: 100 * mb, cpuMillicores: 0)
        async let a = tracker.acquire(memoryBytes: 50 * mb, cpuMillicores: 0, timeout: .seconds(10))
        async let b = tracker.acquire(memoryBytes: 50 * mb, cpuMillicores: 0, timeout: .seconds(10))
        while tracker.waiterCount < 2 { await Task.yield() }
        big?.release()
        let (ta, tb) = await (a, b)
        #expect(ta != nil && tb != nil)
        #expect(tracker.utilization.memoryUsedBytes == 100 * mb)
        ta?.release()
        tb?.release()
    }

    /// A node of `totalMB` and `cpu`, with `heldMB` and `heldCPU` held by a container.
    func node(_ totalMB: UInt64, cpu: UInt64 = 1000, holding heldMB: UInt64, heldCPU: UInt64 = 0) throws -> (ResourceTracker, ResourceToken) {
        let tracker = ResourceTracker(totalMemoryBytes: totalMB * mb, totalCPUMillicores: cpu)
        return (tracker, try tracker.tryAcquire(memoryBytes: heldMB * mb, cpuMillicores: heldCPU).get())
    }

    @Test func roomAReleaseFreesGoesToTheRequestInLineThoughNobodyWaitsOnItYet() throws {
        let (tracker, hold) = try node(100, holding: 100)
        let request = tracker.enqueue(memoryBytes: 60 * mb, cpuMillicores: 0)
        #expect(request.take() == nil && tracker.waiterCount == 1)
        hold.release()
        if case .success = tracker.tryAcquire(memoryBytes: 60 * mb, cpuMillicores: 0) { Issue.record("the freed room was the request's") }
        let token = request.take()
        #expect(token?.memoryBytes == 60 * mb && tracker.waiterCount == 0)
        #expect(request.take() == nil, "a token is taken once")
        token?.release()
        #expect(tracker.utilization.memoryUsedBytes == 0)
    }

    @Test func spareRoomIsWhatNobodyInLineWaitsForButATryMayTakeAnyFreeRoomAsInFn() throws {
        let (tracker, hold) = try node(100, holding: 60)
        let waiting = tracker.enqueue(memoryBytes: 50 * mb, cpuMillicores: 0)
        #expect(waiting.take() == nil, "50 MiB do not fit in 40")
        switch tracker.tryAcquireSpare(memoryBytes: 40 * mb, cpuMillicores: 0) {
        case .success(let t):
            Issue.record("40 MiB are free, but the request in line waits for them")
            t.release()
        case .failure(let full):
            // 60 held + 50 in line + 40 asked = 150 of 100.
            #expect(full == ResourceTracker.CapacityFull(neededMemoryMB: 50, neededCPUMillicores: 0))
        }
        // A call's launch takes free room as Fn's tracker gives it.
        let taken = try tracker.tryAcquire(memoryBytes: 40 * mb, cpuMillicores: 0).get()
        hold.release()
        #expect(waiting.take()?.memoryBytes == 50 * mb)
        taken.release()
        waiting.leave()
    }

    @Test func leavingTheLineGivesBackATokenGrantedButNotTaken() throws {
        let (tracker, hold) = try node(100, cpu: 100, holding: 100, heldCPU: 100)
        let granted = tracker.enqueue(memoryBytes: 50 * mb, cpuMillicores: 50)
        let queued = tracker.enqueue(memoryBytes: 100 * mb, cpuMillicores: 100)
        hold.release()
        #expect(tracker.utilization.memoryUsedBytes == 50 * mb && tracker.waiterCount == 1)
        granted.leave()
        queued.leave()
        #expect(tracker.utilization == .init(memoryUsedBytes: 0, memoryAvailableBytes: 100 * mb, cpuUsedMillicores: 0, cpuAvailableMillicores: 100))
        #expect(tracker.waiterCount == 0 && granted.take() == nil)
    }

    func lacks(_ memoryMB: UInt64, _ cpu: UInt64) -> ResourceTracker.Shortfall { .init(memoryBytes: memoryMB * mb, cpuMillicores: cpu) }

    @Test func aShortfallCountsThoseAheadInLineThenItselfAloneAndRoomOnItsWayUntilItIsReleased() throws {
        let (tracker, hold) = try node(100, cpu: 100, holding: 80, heldCPU: 10)
        let small = try tracker.tryAcquire(memoryBytes: 10 * mb, cpuMillicores: 0).get()
        let first = tracker.enqueue(memoryBytes: 30 * mb, cpuMillicores: 0)
        let second = tracker.enqueue(memoryBytes: 30 * mb, cpuMillicores: 95)
        // 10 MiB free: the first lacks 20; the second its own 30 and the first's 20, or 20 alone.
        #expect(tracker.shortfalls(of: first) == [lacks(20, 0)])
        #expect(tracker.shortfalls(of: second) == [lacks(50, 5), lacks(20, 5)])
        #expect(tracker.expectRelease(hold))
        #expect(!tracker.expectRelease(hold), "expected once")
        #expect(tracker.shortfalls(of: first) == [lacks(0, 0)], "80 MiB and 10 millicores are on their way")
        #expect(tracker.shortfalls(of: second) == [lacks(0, 0)])
        tracker.cancelExpectedRelease(hold)
        #expect(tracker.shortfalls(of: second) == [lacks(50, 5), lacks(20, 5)], "a call took the container: its room is not coming")
        #expect(tracker.expectRelease(hold))
        hold.release()
        // Released: granted in line order; nothing is on its way any more.
        #expect(first.take()?.memoryBytes == 30 * mb && second.take()?.memoryBytes == 30 * mb)
        #expect(tracker.shortfalls(of: second) == [lacks(0, 0)], "granted")
        #expect(!tracker.expectRelease(hold), "a released token is never expected")
        small.release()
        let third = tracker.enqueue(memoryBytes: 50 * mb, cpuMillicores: 0)
        #expect(tracker.shortfalls(of: third) == [lacks(10, 0)], "60 MiB held, 40 free: nothing counts as coming")
        third.leave()
        #expect(tracker.shortfalls(of: third) == [lacks(0, 0)], "not in line")
        first.leave()
        second.leave()
    }

    @Test func aWaitThatTimesOutKeepsItsPlaceInLine() async throws {
        let (tracker, hold) = try node(100, holding: 100)
        let request = tracker.enqueue(memoryBytes: 100 * mb, cpuMillicores: 0)
        #expect(await request.wait(timeout: .milliseconds(20)) == nil)
        #expect(tracker.waiterCount == 1)
        async let token = request.wait(timeout: .seconds(5))
        hold.release()
        let got = await token
        #expect(got?.memoryBytes == 100 * mb)
        got?.release()
        request.leave()
        #expect(tracker.utilization.memoryUsedBytes == 0)
    }
}

@Suite struct NodeResourcesTests {
    let mib: UInt64 = 1 << 20

    @Test func memoryIsTheSmallerOfAvailableAndTheCgroupLimitLessTenPercentHeadroom() throws {
        let r = try NodeResources.compute(memAvailableBytes: 20 << 30, cgroupMemoryLimit: 8 << 30, cpuCount: 4, cgroupCPUQuota: nil)
        #expect(r.memoryBytes == (8 << 30) - (8 << 30) / 10)
        #expect(r.cpuMillicores == 4000)
    }

    @Test func headroomIsAtLeast256MiBAndAtMost5GiB() throws {
        let small = try NodeResources.compute(memAvailableBytes: 1 << 30, cgroupMemoryLimit: nil, cpuCount: 1, cgroupCPUQuota: nil)
        #expect(small.memoryBytes == (1 << 30) - 256 * mib)
        let huge = try NodeResources.compute(memAvailableBytes: 100 << 30, cgroupMemoryLimit: nil, cpuCount: 1, cgroupCPUQuota: nil)
        #expect(huge.memoryBytes == (100 << 30) - (5 << 30))
    }

    @Test func tooLittleMemoryIsAStartupError() {
        #expect(throws: RunnerError.self) {
            try NodeResources.compute(memAvailableBytes: 400 * mib, cgroupMemoryLimit: nil, cpuCount: 1, cgroupCPUQuota: nil)
        }
    }

    @Test func cpuIsCappedByTheCFSQuotaAndBothByTheConfiguredMaximums() throws {
        let r = try NodeResources.compute(
            memAvailableBytes: 8 << 30, cgroupMemoryLimit: nil, cpuCount: 8, cgroupCPUQuota: (quota: 150_000, period: 100_000),
            maxMemoryBytes: 1 << 30, maxCPUMillicores: 1000)
        #expect(r.cpuMillicores == 1000)
        #expect(r.memoryBytes == 1 << 30)
        let quotaOnly = try NodeResources.compute(
            memAvailableBytes: 8 << 30, cgroupMemoryLimit: nil, cpuCount: 8, cgroupCPUQuota: (quota: 150_000, period: 100_000))
        #expect(quotaOnly.cpuMillicores == 1500)
        let noQuota = try NodeResources.compute(
            memAvailableBytes: 8 << 30, cgroupMemoryLimit: nil, cpuCount: 2, cgroupCPUQuota: (quota: -1, period: 100_000))
        #expect(noQuota.cpuMillicores == 2000)
    }

    @Test func thisHostIsSized() throws {
        let r = try NodeResources.detect(layout: try CgroupLayout.detect())
        #expect(r.memoryBytes > 0 && r.cpuMillicores >= 1000)
    }
}
