/// One hot container's life as a value: its phase, and what each event makes happen.
///
/// No I/O, no locks and no clocks inside. `HotSlot` owns one under its lock, feeds it every
/// event (the container started, a freeze is due, a call claimed it, the thaw ended, …) and
/// carries out the actions it returns, the slow ones (freeze, thaw) outside every lock. The
/// rules about a single container live here and are tested here, event by event: a freeze
/// never begins on a container a call already took; a call that takes a freezing container
/// waits for the freeze and then thaws it; no call begins on a frozen container; a failed
/// thaw, or a failed freeze a call waited for, ends the container; a claimed container is not
/// evictable; the container counts as paused from the moment a freeze begins; a container whose
/// process ended is never offered again.
struct SlotLifecycle: Sendable, Equatable {
    enum Phase: Sendable, Equatable {
        /// Started, not yet offered.
        case starting
        /// Offered to calls; `frozen` while the last freeze holds.
        case idle(frozen: Bool)
        /// A freeze is running; `claimed` once a call took the container meanwhile.
        case freezing(claimed: Bool)
        /// A call holds the container's token and has not begun; it thaws it first if `frozen`.
        case claimed(frozen: Bool)
        case busy
        case done
    }

    enum Event: Sendable, Equatable {
        /// The container started and listens.
        case started
        /// The freeze delay passed. `tokenTaken`: the queue already handed the container's
        /// token to a call that waited for it (the call will claim it next).
        case freezeDue(tokenTaken: Bool)
        case freezeEnded(ok: Bool)
        /// A call that took the container's token claims it.
        case claimed
        case thawEnded(ok: Bool)
        case callBegan
        case callEnded(ok: Bool)
        /// The container took its own token (idle timeout, eviction, shutdown): it ends.
        case retired
        /// The container's process ended, whatever the phase (killed, crashed, or a zygote
        /// instance whose template ended).
        case exited
        /// The container's task is leaving, whatever the phase.
        case left
    }

    /// What the container's task may hear from the calls: only their end (`HotSlot` wakes it for
    /// a good end only when it asks). A call's begin is not told; the task learns of it from
    /// `HotSlot.idleness` when a timer wakes it.
    enum Notice: Sendable, Equatable {
        case finished(ok: Bool)
    }

    enum Action: Sendable, Equatable {
        /// Offer a new token on the queue; while idle the evictor may take the container.
        case offer
        /// Freeze the container, off every lock, then report `freezeEnded`.
        case freeze
        /// The claiming call waits until the freeze in progress ends.
        case awaitFreeze
        /// The freeze a claiming call waited for ended.
        case resumeClaimant
        /// The claiming call thaws the container, off every lock, then reports `thawEnded`.
        case thaw
        /// A call has the container, or it ends: the evictor may no longer take it.
        case stopBeingEvictable
        /// Take the container's offered token back from the queue: it ends, no call may take it.
        case withdraw
        case tell(Notice)
    }

    private(set) var phase = Phase.starting
    /// The process ended while a call (or the start) had the container: that ends it.
    private(set) var exited = false

    /// Handles `event` and returns what must happen for it. An event that does not apply in
    /// the current phase (a freeze due while a call runs, a second end) changes nothing.
    mutating func handle(_ event: Event) -> [Action] {
        switch (phase, event) {
        case (.idle, .exited), (.freezing(claimed: false), .exited):
            // Dead while offered: no call may take it any more. A call that already took its
            // token finds it ended when it claims it, and waits for another.
            exited = true
            phase = .done
            return [.stopBeingEvictable, .withdraw, .tell(.finished(ok: false))]
        case (.claimed(frozen: false), .exited):
            // A call took it and has not begun (or is about to): it finds it ended and waits
            // for another container, unless it began already (its request then fails).
            exited = true
            phase = .done
            return [.tell(.finished(ok: false))]
        case (.done, .exited):
            return []
        case (_, .exited):
            // Starting, under a call, thawed or frozen for a call: what runs ends it.
            exited = true
            return []
        case (.starting, .started) where exited, (.busy, .callEnded(ok: true)) where exited,
            (.claimed(frozen: true), .thawEnded) where exited:
            phase = .done
            return [.tell(.finished(ok: false))]
        case (.freezing(claimed: true), .freezeEnded) where exited:
            phase = .done
            return [.resumeClaimant, .tell(.finished(ok: false))]
        case (.starting, .started):
            phase = .idle(frozen: false)
            return [.offer]
        case (.idle(frozen: false), .freezeDue(tokenTaken: false)):
            phase = .freezing(claimed: false)
            return [.freeze]
        case (.freezing(claimed: false), .freezeEnded(let ok)):
            // A failed freeze leaves the container not frozen, and its task ends it.
            phase = .idle(frozen: ok)
            return []
        case (.freezing(claimed: true), .freezeEnded(ok: true)):
            phase = .claimed(frozen: true)
            return [.resumeClaimant]
        case (.freezing(claimed: true), .freezeEnded(ok: false)):
            // Half frozen, perhaps: the call that waited must not run on it. Like a failed thaw,
            // the container ends and the call waits for another.
            phase = .done
            return [.resumeClaimant, .tell(.finished(ok: false))]
        case (.idle(let frozen), .claimed):
            // Claimed, it is no longer idle: evicting it would free nothing.
            phase = .claimed(frozen: frozen)
            return frozen ? [.stopBeingEvictable, .thaw] : [.stopBeingEvictable]
        case (.freezing(claimed: false), .claimed):
            phase = .freezing(claimed: true)
            return [.stopBeingEvictable, .awaitFreeze]
        case (.claimed(frozen: true), .thawEnded(ok: true)):
            phase = .claimed(frozen: false)
            return []
        case (.claimed(frozen: true), .thawEnded(ok: false)):
            phase = .done
            return [.tell(.finished(ok: false))]
        case (.claimed(frozen: false), .callBegan):
            phase = .busy
            return []
        case (.busy, .callEnded(ok: true)):
            phase = .idle(frozen: false)
            return [.offer, .tell(.finished(ok: true))]
        case (.busy, .callEnded(ok: false)):
            phase = .done
            return [.tell(.finished(ok: false))]
        case (.idle, .retired), (.freezing(claimed: false), .retired):
            // Evicted or shut down, also mid-freeze: the freeze's end then changes nothing.
            phase = .done
            return [.stopBeingEvictable, .tell(.finished(ok: false))]
        case (.done, .left):
            return []
        case (.idle, .left):
            // Its task leaves while it is offered (shutdown after a last good call).
            phase = .done
            return [.stopBeingEvictable, .withdraw]
        case (_, .left):
            phase = .done
            return [.stopBeingEvictable]
        default:
            return []
        }
    }

    /// A call claimed the container or runs on it; its end (or the container's) will be told.
    var hasCall: Bool {
        switch phase {
        case .claimed, .busy, .freezing(claimed: true): true
        case .starting, .idle, .freezing(claimed: false), .done: false
        }
    }

    /// The state the slot queue counts and `fnrunner ps` shows: paused from the moment a freeze
    /// begins until the claiming call's thaw ends.
    var containerState: SlotQueueStats.ContainerState {
        switch phase {
        case .starting: .start
        case .idle(frozen: false), .claimed(frozen: false): .idle
        case .idle(frozen: true), .freezing, .claimed(frozen: true): .paused
        case .busy: .busy
        case .done: .done
        }
    }

}
