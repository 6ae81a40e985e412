import RunnerStore
import ServiceLifecycle

/// Writes the queued call records in batches (one transaction each), and the last ones at
/// shutdown: a service of the server's group. A batch is written `interval` after its first
/// record was held (a call ended, or a detached call started), so calls close together share a
/// transaction; until a record is held the writer sleeps, and an idle server stays asleep.
public struct RecordWriter: Service {
    let recorder: StoreRecorder
    let interval: Duration

    public init(recorder: StoreRecorder, interval: Duration = .milliseconds(20)) {
        self.recorder = recorder
        self.interval = interval
    }

    public func run() async throws {
        let (recorder, interval) = (self.recorder, self.interval)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            _ = try? await cancelWhenGracefulShutdown {
                await recorder.waitForRecords()
                try await Task.sleep(for: interval)
            }
            await recorder.flush()
        }
        // Calls still finishing while the agent drains get recorded too.
        for _ in 0..<50 where await recorder.flush() > 0 {}
    }
}
