import RunnerOS
import Synchronization
import Testing

/// Actions run when an event fires: how a container's exit reaches an owner that has no task
/// waiting for it.
struct AsyncEventTests {
    final class Count: Sendable {
        let n = Atomic<Int>(0)
        func bump() { n.add(1, ordering: .relaxed) }
        var value: Int { n.load(ordering: .relaxed) }
    }

    @Test func anActionRunsOnceWhenTheEventFiresAndAtOnceWhenItAlreadyHas() {
        let event = AsyncEvent()
        let early = Count()
        event.onFire { early.bump() }
        #expect(early.value == 0)
        event.fire()
        event.fire()
        #expect(early.value == 1, "once, however often it fires")
        let late = Count()
        event.onFire { late.bump() }
        #expect(late.value == 1, "registered after the event: run at once")
    }

    @Test func aValuesActionGetsTheFirstValueSet() {
        let value = AsyncValue<Int>()
        let seen = Mutex<[Int]>([])
        value.onSet { v in seen.withLock { $0.append(v) } }
        value.set(1)
        value.set(2)
        value.onSet { v in seen.withLock { $0.append(v) } }
        #expect(seen.withLock { $0 } == [1, 1])
    }
}
