import Testing

@testable import Runner

@Suite struct PlaceInLineTests {
    final class Value: Sendable {
        let n: Int
        init(_ n: Int) { self.n = n }
    }

    @Test func aValueDeliveredBeforeTheHolderWaitsIsKeptForIt() async {
        let place = PlaceInLine<Value>()
        #expect(place.deliver(Value(1)))
        #expect(await place.wait()?.n == 1)
        #expect(place.take() == nil, "taken once")
    }

    @Test func aValueDeliveredToASuspendedWaitEndsIt() async {
        let place = PlaceInLine<Value>()
        async let got = place.wait()
        await eventually("a wait is suspended on the place") { place.isWaiting }
        #expect(place.deliver(Value(2)))
        #expect(await got?.n == 2)
    }

    @Test func aPlaceHoldsOneValueAndRefusesASecond() {
        let place = PlaceInLine<Value>()
        #expect(place.deliver(Value(1)))
        #expect(!place.deliver(Value(2)), "the second stays with whoever delivered it")
        #expect(place.take()?.n == 1)
    }

    @Test func closingGivesBackAValueNotTakenAndRefusesLaterOnes() async {
        let place = PlaceInLine<Value>()
        #expect(place.deliver(Value(3)))
        #expect(place.close()?.n == 3)
        #expect(!place.deliver(Value(4)))
        #expect(await place.wait() == nil, "a closed place never waits")
    }

    @Test func closingEndsASuspendedWaitWithNothing() async {
        let place = PlaceInLine<Value>()
        async let got = place.wait()
        await eventually("a wait is suspended on the place") { place.isWaiting }
        #expect(place.close() == nil)
        #expect(await got == nil)
    }

    @Test func aWaitStoppedOrCancelledKeepsThePlaceForALaterValue() async {
        let place = PlaceInLine<Value>()
        async let stopped = place.wait()
        await eventually("a wait is suspended on the place") { place.isWaiting }
        place.stopWaiting()
        #expect(await stopped == nil)

        let cancelled = Task { await place.wait() }
        await eventually("a wait is suspended on the place") { place.isWaiting }
        cancelled.cancel()
        #expect(await cancelled.value == nil)

        #expect(place.deliver(Value(5)), "still in line after both")
        #expect(await place.wait()?.n == 5)
    }
}
