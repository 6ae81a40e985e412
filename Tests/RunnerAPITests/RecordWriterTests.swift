import NodeServices
import Runner
import RunnerOS
import RunnerStore
import Synchronization
import Testing

/// The server's record writer sleeps until a call's record is queued, then writes the batch: no
/// wake-ups of an idle server, and no record left unwritten. A wait that never returns fails
/// the test instead of hanging the run.
@Suite(.timeLimit(.minutes(5)))
struct RecordWriterTests {
    let stores = StoreTests()

    /// A task waiting for records, checked to be still waiting 100 ms later.
    static func stillWaiting(_ recorder: StoreRecorder, _ why: Comment) async throws -> Task<Void, Never> {
        let returned = Atomic(false)
        let waiter = Task {
            await recorder.waitForRecords()
            returned.store(true, ordering: .sequentiallyConsistent)
        }
        try await Task.sleep(for: .milliseconds(100))
        let early = returned.load(ordering: .sequentiallyConsistent)
        #expect(!early, why)
        return waiter
    }

    @Test func aWaitForRecordsLastsUntilARecordIsQueued() async throws {
        try await stores.withStore { store, _ in
            let recorder = StoreRecorder(store: store, logger: .init(label: "test"))
            let waiter = try await Self.stillWaiting(recorder, "nothing was queued")
            let call = try stores.detachedCall()
            try await store.enqueue(call)
            try await recorder.beforeCall(call)
            await waiter.value
        }
    }

    @Test func aWaitReturnsAtOnceWhileRecordsAreQueuedAndWaitsAgainOnceTheyAreWritten() async throws {
        try await stores.withStore { store, _ in
            let recorder = StoreRecorder(store: store, logger: .init(label: "test"))
            let call = try stores.detachedCall()
            try await store.enqueue(call)
            try await recorder.beforeCall(call)
            await recorder.waitForRecords()
            #expect(await recorder.flush() == 1)
            let waiter = try await Self.stillWaiting(recorder, "the queued record was written")
            waiter.cancel()
            await waiter.value
        }
    }

    @Test func aCancelledWaitReturnsWithoutARecordAndLeavesNoWaiterBehind() async throws {
        try await stores.withStore { store, _ in
            let recorder = StoreRecorder(store: store, logger: .init(label: "test"))
            let before = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                await recorder.waitForRecords()  // cancelled before it waits
            }
            await before.value
            // Usually cancelled while it waits; under load possibly before it began, which must
            // end the same way.
            let during = Task { await recorder.waitForRecords() }
            try await Task.sleep(for: .milliseconds(20))
            during.cancel()
            await during.value
            // A record queued now finds no waiter to resume (a resumed continuation would trap).
            let call = try stores.detachedCall()
            try await store.enqueue(call)
            try await recorder.beforeCall(call)
            #expect(await recorder.flush() == 1)
        }
    }

    @Test func theWriterWritesEachQueuedRecordWithoutAReaderFlushingAndStopsWhenCancelled() async throws {
        try await stores.withStore { store, _ in
            let recorder = StoreRecorder(store: store, logger: .init(label: "test"))
            let writer = Task { try await RecordWriter(recorder: recorder, interval: .milliseconds(5)).run() }
            // The first record finds the writer waiting with nothing queued; the second comes
            // after a batch was written, when the writer must wait again and wake again.
            for _ in 0..<2 {
                try await Task.sleep(for: .milliseconds(50))
                let call = try stores.call(type: Call.sync)
                try await recorder.afterCall(call)
                var written = false
                for _ in 0..<500 where !written {
                    try await Task.sleep(for: .milliseconds(10))
                    written = (try? await store.call(fnID: "f1", id: call.id)) != nil
                }
                #expect(written, "the writer wrote the ended call's record")
            }
            writer.cancel()
            try await writer.value
        }
    }

    @Test func aBatchIsTakenEncodedAndWrittenOnTheRecordersLowPriorityThread() async throws {
        try await stores.withStore { store, _ in
            let executor = BackgroundExecutor(name: "fn-test-rec", niceIncrement: 10)
            let recorder = StoreRecorder(store: store, logger: .init(label: "test"), executor: executor)
            let calls = try (0..<3).map { _ in try stores.call(type: Call.sync) }
            for call in calls { try await recorder.afterCall(call) }
            #expect(executor.threadNice == nil, "nothing ran on the executor before the flush")
            #expect(await recorder.flush() == 3)
            #expect(executor.threadNice != nil, "the flush ran on the executor's thread")
            for call in calls { _ = try await store.call(fnID: "f1", id: call.id) }
        }
    }

    @Test func aBatchLargerThanTheBackgroundLimitIsWrittenWholeAtTheCallersPriority() async throws {
        try await stores.withStore { store, _ in
            let executor = BackgroundExecutor(name: "fn-test-big", niceIncrement: 10)
            let recorder = StoreRecorder(store: store, logger: .init(label: "test"), executor: executor, backgroundBatchLimit: 2)
            let ended = try (0..<5).map { _ in try stores.call(type: Call.sync) }
            for call in ended { try await recorder.afterCall(call) }
            #expect(await recorder.flush() == 5)
            #expect(executor.threadNice == nil, "nothing of the batch ran on the low-priority thread")
            for call in ended { _ = try await store.call(fnID: "f1", id: call.id) }
        }
    }
}
