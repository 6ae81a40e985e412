@testable import Runner
import Testing

/// The rules of one hot container, event by event, on the lifecycle value itself: no driver,
/// no clock, no polling.
struct SlotLifecycleTests {
    typealias Life = SlotLifecycle

    /// A lifecycle driven through `events`, with the actions of the last one.
    func life(after events: [Life.Event]) -> (Life, [Life.Action]) {
        var life = Life()
        var last: [Life.Action] = []
        for event in events { last = life.handle(event) }
        return (life, last)
    }

    @Test func aStartedContainerIsOfferedAndCountsAsIdle() {
        let (life, actions) = life(after: [.started])
        #expect(actions == [.offer])
        #expect(life.phase == .idle(frozen: false) && life.containerState == .idle)
    }

    @Test func aFreezeBeginsOnlyOnAnIdleContainerWhoseTokenNoCallTook() {
        #expect(life(after: [.started, .freezeDue(tokenTaken: false)]).1 == [.freeze])
        let handedOver = life(after: [.started, .freezeDue(tokenTaken: true)])
        #expect(handedOver.1 == [] && handedOver.0.phase == .idle(frozen: false), "the call waiting for it gets it unfrozen")
        let claimed = life(after: [.started, .claimed, .freezeDue(tokenTaken: true)])
        #expect(claimed.1 == [] && claimed.0.phase == .claimed(frozen: false))
        let busy = life(after: [.started, .claimed, .callBegan, .freezeDue(tokenTaken: false)])
        #expect(busy.1 == [] && busy.0.phase == .busy, "never frozen under a call")
        let frozen = life(after: [.started, .freezeDue(tokenTaken: false), .freezeEnded(ok: true), .freezeDue(tokenTaken: false)])
        #expect(frozen.1 == [] && frozen.0.phase == .idle(frozen: true), "frozen once, not again")
    }

    @Test func aContainerCountsAsPausedFromTheMomentItsFreezeBegins() {
        let (freezing, _) = life(after: [.started, .freezeDue(tokenTaken: false)])
        #expect(freezing.containerState == .paused)
        let (frozen, actions) = life(after: [.started, .freezeDue(tokenTaken: false), .freezeEnded(ok: true)])
        #expect(actions == [] && frozen.phase == .idle(frozen: true) && frozen.containerState == .paused)
    }

    @Test func aFrozenContainerThatACallClaimsIsThawedBeforeTheCallBegins() {
        var (life, _) = life(after: [.started, .freezeDue(tokenTaken: false), .freezeEnded(ok: true)])
        #expect(life.handle(.claimed) == [.stopBeingEvictable, .thaw])
        #expect(life.handle(.callBegan) == [], "no call begins on a frozen container")
        #expect(life.phase == .claimed(frozen: true) && life.containerState == .paused)
        #expect(life.handle(.thawEnded(ok: true)) == [])
        #expect(life.handle(.callBegan) == [], "a begin wakes nobody: the container's task hears of the end")
        #expect(life.phase == .busy && life.hasCall)
    }

    @Test func aCallThatClaimsAFreezingContainerWaitsForTheFreezeThenThawsIt() {
        var (life, _) = life(after: [.started, .freezeDue(tokenTaken: false)])
        #expect(life.handle(.claimed) == [.stopBeingEvictable, .awaitFreeze])
        #expect(life.handle(.freezeDue(tokenTaken: true)) == [], "no second freeze")
        #expect(life.handle(.freezeEnded(ok: true)) == [.resumeClaimant])
        #expect(life.phase == .claimed(frozen: true), "the claimant thaws it next")
        #expect(life.handle(.retired) == [], "its token is the call's: eviction cannot end it")
    }

    @Test func aFailedFreezeLeavesAnUnclaimedContainerToItsTaskAndEndsAClaimedOne() {
        let (alone, actions) = life(after: [.started, .freezeDue(tokenTaken: false), .freezeEnded(ok: false)])
        #expect(actions == [] && alone.phase == .idle(frozen: false), "its task ends it")
        // Perhaps half frozen: the call that waited must not run on it, it waits for another.
        var (claimed, _) = life(after: [.started, .freezeDue(tokenTaken: false), .claimed])
        #expect(claimed.handle(.freezeEnded(ok: false)) == [.resumeClaimant, .tell(.finished(ok: false))])
        #expect(claimed.phase == .done)
        #expect(claimed.handle(.callBegan) == [] && claimed.phase == .done)
    }

    @Test func aClaimedContainerIsNoLongerEvictable() {
        #expect(life(after: [.started, .claimed]).1 == [.stopBeingEvictable])
        let retired = life(after: [.started, .claimed, .retired])
        #expect(retired.1 == [] && retired.0.phase == .claimed(frozen: false), "its token is the call's")
    }

    @Test func aFailedThawEndsTheContainerAndTellsItsTask() {
        var (life, _) = life(after: [.started, .freezeDue(tokenTaken: false), .freezeEnded(ok: true), .claimed])
        #expect(life.handle(.thawEnded(ok: false)) == [.tell(.finished(ok: false))])
        #expect(life.phase == .done && life.containerState == .done)
    }

    @Test func aGoodCallOffersTheContainerAgainAndABadOneEndsIt() {
        var (good, _) = life(after: [.started, .claimed, .callBegan])
        #expect(good.handle(.callEnded(ok: true)) == [.offer, .tell(.finished(ok: true))])
        #expect(good.phase == .idle(frozen: false))
        var (bad, _) = life(after: [.started, .claimed, .callBegan])
        #expect(bad.handle(.callEnded(ok: false)) == [.tell(.finished(ok: false))])
        #expect(bad.phase == .done)
        #expect(bad.handle(.callEnded(ok: true)) == [] && bad.phase == .done, "an end after the end changes nothing")
    }

    @Test func anIdleOrFreezingContainerCanBeRetiredAndTheLateFreezeEndChangesNothing() {
        #expect(life(after: [.started, .retired]).1 == [.stopBeingEvictable, .tell(.finished(ok: false))])
        let frozen = life(after: [.started, .freezeDue(tokenTaken: false), .freezeEnded(ok: true), .retired])
        #expect(frozen.1 == [.stopBeingEvictable, .tell(.finished(ok: false))] && frozen.0.phase == .done)
        var (freezing, actions) = life(after: [.started, .freezeDue(tokenTaken: false), .retired])
        #expect(actions == [.stopBeingEvictable, .tell(.finished(ok: false))])
        #expect(freezing.handle(.freezeEnded(ok: true)) == [] && freezing.phase == .done)
        let busy = life(after: [.started, .claimed, .callBegan, .retired])
        #expect(busy.1 == [] && busy.0.phase == .busy, "a running call is never retired under it")
    }

    @Test func aLeavingTaskEndsTheContainerInAnyPhaseOnce() {
        for events: [Life.Event] in [[], [.started, .claimed], [.started, .claimed, .callBegan], [.started, .freezeDue(tokenTaken: false)]] {
            var (life, _) = life(after: events)
            #expect(life.handle(.left) == [.stopBeingEvictable], "\(events)")
            #expect(life.phase == .done)
            #expect(life.handle(.left) == [])
        }
        // Offered when its task leaves (shutdown after a last good call): no call may take it.
        var (offered, _) = life(after: [.started, .claimed, .callBegan, .callEnded(ok: true)])
        #expect(offered.handle(.left) == [.stopBeingEvictable, .withdraw] && offered.phase == .done)
    }

    @Test func aContainerWhoseProcessEndedWhileOfferedIsWithdrawnAndEndsAtOnce() {
        let ended: [Life.Action] = [.stopBeingEvictable, .withdraw, .tell(.finished(ok: false))]
        let offered: [[Life.Event]] = [
            [.started], [.started, .freezeDue(tokenTaken: false), .freezeEnded(ok: true)], [.started, .freezeDue(tokenTaken: false)],
        ]
        for events in offered {
            var (life, actions) = life(after: events + [.exited])
            #expect(actions == ended && life.phase == .done, "\(events)")
            // A call that took its token first finds it ended when it claims it.
            #expect(life.handle(.claimed) == [] && life.phase == .done)
            #expect(life.handle(.exited) == [], "told once")
        }
    }

    @Test func aContainerWhoseProcessEndedUnderACallEndsWithThatCallEvenAGoodOne() {
        var (busy, actions) = life(after: [.started, .claimed, .callBegan, .exited])
        #expect(actions == [] && busy.hasCall, "the call has it")
        #expect(busy.handle(.callEnded(ok: true)) == [.tell(.finished(ok: false))], "not offered again")
        #expect(busy.phase == .done)
        var (starting, started) = life(after: [.exited])
        #expect(started == [] && starting.phase == .starting)
        #expect(starting.handle(.started) == [.tell(.finished(ok: false))] && starting.phase == .done, "never offered")
    }

    @Test func aCallThatTookADeadContainerBeforeBeginningFindsItEndedAndWaitsForAnother() {
        // Claimed, not frozen: it ends now; the call's claim reads it as lost.
        let claimed = life(after: [.started, .claimed, .exited])
        #expect(claimed.1 == [.tell(.finished(ok: false))] && claimed.0.phase == .done)
        // Being thawed for the call: it ends when the thaw does, good or not.
        for ok in [true, false] {
            var (thawing, actions) = life(after: [.started, .freezeDue(tokenTaken: false), .freezeEnded(ok: true), .claimed, .exited])
            #expect(actions == [] && thawing.phase == .claimed(frozen: true))
            #expect(thawing.handle(.thawEnded(ok: ok)) == [.tell(.finished(ok: false))] && thawing.phase == .done)
        }
        // Freezing when the call took it: the call waiting for the freeze is let go, and it ends.
        var (freezing, actions) = life(after: [.started, .freezeDue(tokenTaken: false), .claimed, .exited])
        #expect(actions == [] && freezing.phase == .freezing(claimed: true))
        #expect(freezing.handle(.freezeEnded(ok: true)) == [.resumeClaimant, .tell(.finished(ok: false))] && freezing.phase == .done)
    }
}
