import RunnerOS
import Synchronization

/// Events a test and the stub functions it calls signal each other with, by name
/// ("NAME.started", "NAME.go"): a stub call can then hold until the test lets it go, so no
/// timing decides what a test sees.
public enum TestSignals {
    private static let events = Mutex<[String: AsyncEvent]>([:])

    public static func event(_ name: String) -> AsyncEvent {
        events.withLock { e in
            if let existing = e[name] { return existing }
            let made = AsyncEvent()
            e[name] = made
            return made
        }
    }
}
