import RunnerOS
import Synchronization

/// The one connection to a hot function (its socket or its pipes), used by one call at a time.
/// A call takes it and gives it back only after a clean exchange; one that broke it keeps it
/// away for good, and the container must end, as Fn ends such containers.
final class HeldConnection: Sendable {
    private let connection: Mutex<HTTPStreamConnection?>
    /// What the function is reached through, for the error ("connection", "pipes").
    private let what: String

    init(_ connection: HTTPStreamConnection? = nil, what: String) {
        self.connection = Mutex(connection)
        self.what = what
    }

    /// Takes the connection for a call; throws while another call has it or after one broke it.
    func take() throws(RunnerError) -> HTTPStreamConnection {
        guard let taken = connection.withLock({ c -> HTTPStreamConnection? in
            defer { c = nil }
            return c
        }) else {
            throw RunnerError(.invalidState, "the function's \(what) is busy or broken", step: "call function")
        }
        return taken
    }

    /// Gives it (back) for the next call: the first one ready, or one a clean exchange left usable.
    func give(_ ready: HTTPStreamConnection) { connection.withLock { $0 = ready } }

    /// Whether a call from the current thread would have its answers read on this thread (see
    /// `HTTPStreamConnection.isReadOnCurrentLoop`); false while a call has it or after one broke it.
    var isReadOnCurrentLoop: Bool { connection.withLock { $0?.isReadOnCurrentLoop ?? false } }

    /// Drops it: the container is ending.
    func drop() { connection.withLock { $0 = nil } }
}
