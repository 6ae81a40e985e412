import RunnerStore
import ServiceLifecycle

/// Writes the queued call records every `interval` (one transaction per batch), and the last
/// ones at shutdown: a service of the server's group.
public struct RecordWriter: Service {
    let recorder: StoreRecorder
    let interval: Duration

    public init(recorder: StoreRecorder, interval: Duration = .milliseconds(20)) {
        self.recorder = recorder
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await recorder.flush()
            let interval = self.interval
            _ = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        // Calls still finishing while the agent drains get recorded too.
        for _ in 0..<50 where await recorder.flush() > 0 {}
    }
}
