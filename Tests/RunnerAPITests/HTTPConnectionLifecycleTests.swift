import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Testing

@testable import RunnerAPI

/// A connection's idle timeout and graceful shutdown, decided as Hummingbird's connection state
/// handler decides them.
struct HTTPConnectionLifecycleTests {
    typealias L = HTTPConnectionLifecycle
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let head = HTTPRequestPart.head(HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/invoke/x"))

    func at(_ ms: Int64) -> NIODeadline { t0 + .milliseconds(ms) }

    /// An active connection (300 ms idle timeout, or none) with `requests` read whole at 1 ms.
    func active(idleTimeout: TimeAmount? = .milliseconds(300), requests: Int = 0) -> L {
        var l = L(idleTimeout: idleTimeout, now: t0)
        _ = l.activated(now: t0)
        for _ in 0..<requests {
            l.read(head, now: at(1))
            l.read(.end(nil), now: at(1))
        }
        return l
    }

    @Test func anActiveConnectionArmsItsIdleTimerAndOneWithoutATimeoutNever() {
        var l = L(idleTimeout: .milliseconds(300), now: t0)
        #expect(l.activated(now: t0) == .armIdleTimer(at(300)))
        var never = L(idleTimeout: nil, now: t0)
        #expect(never.activated(now: t0) == .none)
        never.read(head, now: at(1))
        #expect(never.idleTimerFired(now: at(10_000)) == .none)
        #expect(never.answerEnded(now: at(10_001)) == .none)
    }

    @Test func aConnectionWithNothingReadIsClosedWhenItsTimerGoesOff() {
        var l = L(idleTimeout: .milliseconds(300), now: t0)
        _ = l.activated(now: t0)
        #expect(l.idleTimerFired(now: at(300)) == .close)
    }

    @Test func aPartReadPutsTheCloseOffToATimeoutAfterIt() {
        var l = L(idleTimeout: .milliseconds(300), now: t0)
        _ = l.activated(now: t0)
        l.read(head, now: at(200))
        // A head half read (no end yet) is not being answered: it times out like silence.
        #expect(l.idleTimerFired(now: at(300)) == .armIdleTimer(at(500)))
        #expect(l.idleTimerFired(now: at(500)) == .close)
    }

    @Test func aRequestReadWholeIsNeverCutWhileItIsAnswered() {
        var l = L(idleTimeout: .milliseconds(300), now: t0)
        _ = l.activated(now: t0)
        l.read(head, now: at(10))
        l.read(.end(nil), now: at(11))
        #expect(l.idleTimerFired(now: at(5_000)) == .none, "a long call is not cut")
        #expect(l.answerEnded(now: at(6_000)) == .armIdleTimer(at(6_300)), "its end starts the idle time")
        #expect(l.idleTimerFired(now: at(6_200)) == .armIdleTimer(at(6_300)))
        #expect(l.idleTimerFired(now: at(6_300)) == .close)
    }

    @Test func pipelinedRequestsKeepTheConnectionBusyUntilTheLastAnswerEnds() {
        var l = active(requests: 2)
        #expect(l.requestsInProgress == 2)
        #expect(l.answerEnded(now: at(50)) == .none, "one answer still owed")
        #expect(l.idleTimerFired(now: at(400)) == .none)
        #expect(l.answerEnded(now: at(500)) == .armIdleTimer(at(800)))
    }

    @Test func aGracefulShutdownClosesAnIdleConnectionAtOnceAndABusyOneAfterItsAnswers() {
        var idle = active(idleTimeout: nil)
        #expect(idle.quiesce() == .close)

        var busy = active(requests: 2)
        #expect(busy.quiesce() == .none)
        #expect(busy.answerEnded(now: at(2)) == .none)
        #expect(busy.answerEnded(now: at(3)) == .close)
    }

    @Test func anInactiveConnectionIsLeftToItsTeardown() {
        var l = active(requests: 1)
        l.deactivated()
        #expect(l.idleTimerFired(now: at(1_000)) == .none)
        #expect(l.answerEnded(now: at(1_001)) == .none)
    }
}
