import NIOCore
import NIOPosix

/// Runs a task's jobs on the event loop whose thread enqueued them (resumed the task), when that
/// is one of `group`'s loops, and on the group's next loop otherwise.
///
/// gRPC's stream channels live on their connection's loop. An RPC handler on the cooperative
/// pool crossed threads for every message it took from its stream and every one it wrote: an
/// Engage call sends about six, and each crossing cost a thread wake-up. Under this executor a
/// stream's handler runs where its stream's messages arrive, so it stays on its connection's
/// loop; connections on other loops keep theirs, so a node still uses every loop.
///
/// Only what a task runs moves here, child tasks included; unstructured tasks it starts do not
/// (a hot call's task is given `pinnedHere`). Nothing on the way may block: a hot call's thaw
/// waits for a slow kernel on a blocking thread, and a cold call, whose container start and
/// removal may block, leaves the loops for its length (`PureRunner`).
public final class LoopAffineTaskExecutor: TaskExecutor {
    /// The executor the server's tasks prefer, for the tasks of their own they start.
    @TaskLocal public static var current: LoopAffineTaskExecutor?

    private let pinned: [EventLoopTaskExecutor]
    private let group: MultiThreadedEventLoopGroup

    public init(_ group: MultiThreadedEventLoopGroup) {
        self.group = group
        pinned = group.makeIterator().map { EventLoopTaskExecutor($0) }
    }

    /// The executor of the loop this thread runs, if it is one of the group's.
    public var pinnedHere: EventLoopTaskExecutor? {
        guard let here = MultiThreadedEventLoopGroup.currentEventLoop else { return nil }
        return pinned.first { $0.loop === here }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let loop = pinnedHere?.loop ?? group.next()
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
