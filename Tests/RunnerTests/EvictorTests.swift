@testable import Runner
import Synchronization
import Testing

@Suite struct EvictorTests {
    func need(_ memory: UInt64, _ cpu: UInt64) -> ResourceTracker.Shortfall { .init(memoryBytes: memory, cpuMillicores: cpu) }

    final class Evicted: Sendable {
        let ids = Mutex<[String]>([])
        func mark(_ s: String) -> @Sendable () -> Bool {
            {
                self.ids.withLock { $0.append(s) }
                return true
            }
        }
        var all: [String] { ids.withLock { $0 } }
    }

    @Test func aContainerIsNeverEvictedForItsOwnSlotQueue() {
        let e = Evictor()
        let evicted = Evicted()
        _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 100, evict: evicted.mark("a1"))
        #expect(e.evict(for: "a", tracker: nil) { [need(50, 0)] }.evicted.isEmpty)
        #expect(evicted.all.isEmpty)
    }

    @Test func nothingNeededEvictsNothing() {
        let e = Evictor()
        let evicted = Evicted()
        _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 100, evict: evicted.mark("a1"))
        #expect(e.evict(for: "b", tracker: nil) { [need(0, 0)] }.evicted.isEmpty)
        #expect(e.count == 1)
    }

    @Test func anUnsatisfiableNeedEvictsNothingAndTouchesNoToken() {
        let e = Evictor()
        let evicted = Evicted()
        _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 100, evict: evicted.mark("a1"))
        _ = e.register(slotKey: "c", memoryBytes: 100, cpuMillicores: 100, evict: evicted.mark("c1"))
        #expect(e.evict(for: "b", tracker: nil) { [need(300, 0)] }.evicted.isEmpty)
        #expect(evicted.all.isEmpty)
        #expect(e.count == 2)
    }

    @Test func theOldestAreEvictedFirstAndOnlyAsManyAsNeeded() {
        let e = Evictor()
        let evicted = Evicted()
        for i in 1...3 { _ = e.register(slotKey: "a", memoryBytes: 0, cpuMillicores: 100, evict: evicted.mark("a\(i)")) }
        #expect(e.evict(for: "b", tracker: nil) { [need(0, 200)] }.evicted.count == 2)
        #expect(evicted.all == ["a1", "a2"])
        #expect(e.count == 1)
    }

    @Test func containersThatBecameBusyAreSkipped() {
        let e = Evictor()
        let evicted = Evicted()
        let first = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 0, evict: evicted.mark("a1"))!
        _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 0, evict: evicted.mark("a2"))
        #expect(e.unregister(first))
        #expect(e.evict(for: "b", tracker: nil) { [need(100, 0)] }.evicted.count == 1)
        #expect(evicted.all == ["a2"])
    }

    @Test func aSecondEvictionCountsTheFirstOnesRoomAsOnItsWayAndEvictsOnlyTheRest() throws {
        let tracker = ResourceTracker(totalMemoryBytes: 400, totalCPUMillicores: 1000)
        let e = Evictor()
        let evicted = Evicted()
        var held: [ResourceToken] = []
        for i in 1...3 {
            let token = try tracker.tryAcquire(memoryBytes: 100, cpuMillicores: 0).get()
            held.append(token)
            _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 0, resources: token, evict: evicted.mark("a\(i)"))
        }
        // 100 free; two launches of 200 each, both in line before any room is back.
        let first = tracker.enqueue(memoryBytes: 200, cpuMillicores: 0)
        let second = tracker.enqueue(memoryBytes: 200, cpuMillicores: 0)
        #expect(e.evict(for: "b", tracker: tracker) { tracker.shortfalls(of: first) } == .init(evicted: [1], covered: true))
        let again = e.evict(for: "b", tracker: tracker) { tracker.shortfalls(of: first) }
        #expect(again == .init(evicted: [], covered: true), "its room is on its way")
        #expect(e.evict(for: "c", tracker: tracker) { tracker.shortfalls(of: second) } == .init(evicted: [2, 3], covered: true))
        #expect(evicted.all == ["a1", "a2", "a3"])
        for token in held { token.release() }
        let tokens = [first.take(), second.take()]
        #expect(tokens.allSatisfy { $0?.memoryBytes == 200 }, "both launches got their room")
        for t in tokens { t?.release() }
    }

    @Test func aContainerACallTookFirstIsNotCountedAsEvictedNorAsComing() throws {
        let tracker = ResourceTracker(totalMemoryBytes: 100, totalCPUMillicores: 1000)
        let token = try tracker.tryAcquire(memoryBytes: 100, cpuMillicores: 0).get()
        let e = Evictor()
        _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 0, resources: token) { false }
        let request = tracker.enqueue(memoryBytes: 100, cpuMillicores: 0)
        #expect(e.evict(for: "b", tracker: tracker) { tracker.shortfalls(of: request) } == .init(evicted: [], covered: true))
        #expect(tracker.shortfalls(of: request) == [need(100, 0)], "its room is not coming")
        #expect(e.evict(for: "b", tracker: tracker) { tracker.shortfalls(of: request) } == .init(evicted: [], covered: false))
        request.leave()
        token.release()
    }

    /// A release grants whoever in line fits: a small launch behind one that no eviction can
    /// satisfy evicts for itself, and gets that room.
    @Test func aSmallLaunchBehindOneNoEvictionCanSatisfyEvictsForItself() throws {
        let tracker = ResourceTracker(totalMemoryBytes: 300, totalCPUMillicores: 1000)
        let e = Evictor()
        let idle = try tracker.tryAcquire(memoryBytes: 100, cpuMillicores: 0).get()
        _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 0, resources: idle) { true }
        let busy = try tracker.tryAcquire(memoryBytes: 200, cpuMillicores: 0).get()
        let big = tracker.enqueue(memoryBytes: 300, cpuMillicores: 0)
        let small = tracker.enqueue(memoryBytes: 100, cpuMillicores: 0)
        #expect(tracker.shortfalls(of: small) == [need(400, 0), need(100, 0)])
        #expect(e.evict(for: "b", tracker: tracker) { tracker.shortfalls(of: big) } == .init(evicted: [], covered: false))
        #expect(e.evict(for: "c", tracker: tracker) { tracker.shortfalls(of: small) } == .init(evicted: [1], covered: true))
        idle.release()
        #expect(big.take() == nil)
        let token = small.take()
        #expect(token?.memoryBytes == 100, "the room went to the small launch")
        token?.release()
        big.leave()
        busy.release()
    }

    @Test func containersHoldingNothingCannotRegister() {
        #expect(Evictor().register(slotKey: "a", memoryBytes: 0, cpuMillicores: 0, evict: { true }) == nil)
    }
}

@Suite struct SlotKeyTests {
    func key(config: [String: String] = ["A": "1"], annotations: [String: String] = [:], image: String = "img:1", memory: UInt64 = 128) -> SlotKey {
        SlotKey(
            appID: "app", fnID: "fn", image: image, format: "http-stream", memoryMB: memory, cpuMillicores: 0, timeoutSeconds: 30,
            idleTimeoutSeconds: 30, config: config, annotations: annotations)
    }

    @Test func everyChangeOfImageLimitsConfigOrAnnotationsGivesANewKey() {
        let base = key()
        #expect(key() == base)
        #expect(key(config: ["A": "2"]) != base)
        #expect(key(config: ["A": "1", "B": ""]) != base)
        #expect(key(annotations: ["x": "y"]) != base)
        #expect(key(image: "img:2") != base)
        #expect(key(memory: 256) != base)
        // Field boundaries cannot be confused by their contents.
        #expect(key(config: ["AB": "C"]) != key(config: ["A": "BC"]))
    }
}
