import NIOCore

/// Runs a task's jobs on one NIO event loop: the executor a hot call's own task prefers when
/// its edge (an invoke's connection, an Engage's stream) runs on that loop, so the function's
/// answer wakes the loop and no other thread of the server.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
