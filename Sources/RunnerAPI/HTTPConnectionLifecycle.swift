import NIOCore
import NIOHTTPTypes

/// When an HTTP/1 connection is closed for being idle or for a graceful shutdown, decided the
/// way Hummingbird's `HTTPConnectionStateHandler` decides it, as a value with no I/O.
///
/// `InvokeChannelHandler` keeps it in place of that handler: one handler fewer for every
/// request part read and every answer part written, on the loop that is serve's bottleneck
/// under load. The rules stay Hummingbird's, so a connection lives exactly as long as before:
/// - idle means no request part read and no answer in progress for the idle timeout; a call
///   whose request was read whole is never cut, however long it runs;
/// - a graceful shutdown closes an idle connection at once, and a busy one once the answers it
///   owes are written.
struct HTTPConnectionLifecycle {
    enum Action: Equatable {
        case none
        /// Arm the idle timer for this deadline, unless it is armed.
        case armIdleTimer(NIODeadline)
        /// Flush what is written and close the connection.
        case close
    }

    /// Nil: connections are never closed for being idle.
    let idleTimeout: TimeAmount?
    /// Requests whose head was read and whose answer's end was not written yet.
    private(set) var requestsInProgress = 0
    /// A request's head was read and its end not yet.
    private(set) var isRequestBeingRead = false
    private var lastActive: NIODeadline
    private var isActive = false
    private var closeAfterAnswers = false

    init(idleTimeout: TimeAmount?, now: NIODeadline) {
        self.idleTimeout = idleTimeout
        lastActive = now
    }

    /// The connection became active (or was active when the handler was added).
    mutating func activated(now: NIODeadline) -> Action {
        isActive = true
        guard let idleTimeout else { return .none }
        return .armIdleTimer(now + idleTimeout)
    }

    mutating func deactivated() { isActive = false }

    mutating func read(_ part: HTTPRequestPart, now: NIODeadline) {
        lastActive = now
        switch part {
        case .head:
            isRequestBeingRead = true
            requestsInProgress += 1
        case .body: break
        case .end: isRequestBeingRead = false
        }
    }

    /// An answer's end was written (by the router or on the loop).
    mutating func answerEnded(now: NIODeadline) -> Action {
        requestsInProgress -= 1
        guard requestsInProgress == 0 else { return .none }
        if closeAfterAnswers { return .close }
        guard let idleTimeout, isActive else { return .none }
        lastActive = now
        return .armIdleTimer(now + idleTimeout)
    }

    /// The idle timer went off.
    mutating func idleTimerFired(now: NIODeadline) -> Action {
        guard let idleTimeout, isActive else { return .none }
        // A request read whole is being answered: the answer's end arms the timer again.
        if !isRequestBeingRead && requestsInProgress > 0 { return .none }
        let deadline = lastActive + idleTimeout
        return now >= deadline ? .close : .armIdleTimer(deadline)
    }

    /// The server is shutting down gracefully.
    mutating func quiesce() -> Action {
        guard requestsInProgress > 0 else { return .close }
        closeAfterAnswers = true
        return .none
    }
}
