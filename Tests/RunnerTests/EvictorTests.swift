import Runner
import Synchronization
import Testing

@Suite struct EvictorTests {
    final class Evicted: Sendable {
        let ids = Mutex<[String]>([])
        func mark(_ s: String) -> @Sendable () -> Void { { self.ids.withLock { $0.append(s) } } }
        var all: [String] { ids.withLock { $0 } }
    }

    @Test func aContainerIsNeverEvictedForItsOwnSlotQueue() {
        let e = Evictor()
        let evicted = Evicted()
        _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 100, evict: evicted.mark("a1"))
        #expect(e.evict(for: "a", neededMemoryBytes: 50, neededCPUMillicores: 0).isEmpty)
        #expect(evicted.all.isEmpty)
    }

    @Test func nothingNeededEvictsNothing() {
        let e = Evictor()
        let evicted = Evicted()
        _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 100, evict: evicted.mark("a1"))
        #expect(e.evict(for: "b", neededMemoryBytes: 0, neededCPUMillicores: 0).isEmpty)
        #expect(e.count == 1)
    }

    @Test func anUnsatisfiableNeedEvictsNothingAndTouchesNoToken() {
        let e = Evictor()
        let evicted = Evicted()
        _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 100, evict: evicted.mark("a1"))
        _ = e.register(slotKey: "c", memoryBytes: 100, cpuMillicores: 100, evict: evicted.mark("c1"))
        #expect(e.evict(for: "b", neededMemoryBytes: 300, neededCPUMillicores: 0).isEmpty)
        #expect(evicted.all.isEmpty)
        #expect(e.count == 2)
    }

    @Test func theOldestAreEvictedFirstAndOnlyAsManyAsNeeded() {
        let e = Evictor()
        let evicted = Evicted()
        for i in 1...3 { _ = e.register(slotKey: "a", memoryBytes: 0, cpuMillicores: 100, evict: evicted.mark("a\(i)")) }
        #expect(e.evict(for: "b", neededMemoryBytes: 0, neededCPUMillicores: 200).count == 2)
        #expect(evicted.all == ["a1", "a2"])
        #expect(e.count == 1)
    }

    @Test func containersThatBecameBusyAreSkipped() {
        let e = Evictor()
        let evicted = Evicted()
        let first = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 0, evict: evicted.mark("a1"))!
        _ = e.register(slotKey: "a", memoryBytes: 100, cpuMillicores: 0, evict: evicted.mark("a2"))
        #expect(e.unregister(first))
        #expect(e.evict(for: "b", neededMemoryBytes: 100, neededCPUMillicores: 0).count == 1)
        #expect(evicted.all == ["a2"])
    }

    @Test func containersHoldingNothingCannotRegister() {
        #expect(Evictor().register(slotKey: "a", memoryBytes: 0, cpuMillicores: 0, evict: {}) == nil)
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
