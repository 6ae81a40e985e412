import Runner
import RunnerOS
import Sandbox
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fork of a zygote template: in cgroups of its own, stopped before the FDK runs (in
/// `sigwait`) until `start` lets it go on.
final class ZygoteInstance: Sendable {
    let container: Container
    let output: ContainerOutput
    /// Its listener directory under the template's /tmp/iofs.
    let directory: String
    private let ended = Mutex(false)

    init(container: Container, output: ContainerOutput, directory: String) {
        self.container = container
        self.output = output
        self.directory = directory
    }

    /// Lets the instance enter the FDK and returns it as a hot container once its listener
    /// answers (errors as for any start: the instance exiting first is 502, no listener within
    /// the start timeout 504). On failure the instance is gone.
    func start(_ task: ContainerTask, template: ZygoteTemplate, driver: NativeDriver) async throws(RunnerError) -> HotContainer {
        let hot = HotContainer(
            container: container, output: output, throttling: task.function.cpuMillicores > 0, onThaw: task.onThaw,
            onReclaim: task.onReclaim, onClose: { await self.end(template: template) })
        do throws(RunnerError) {
            guard let directory = template.openDirectory(directory) else {
                throw RunnerError(.containerInit, "the instance's iofs directory is gone", step: "zygote instance")
            }
            defer { close(directory) }
            let watch = try driver.watcher.watch("/proc/self/fd/\(directory)")
            try container.signal(SIGUSR1)
            try await hot.waitUntilReady(
                directory: directory, watch: watch, timeout: task.startTimeout, maxHeaderBytes: task.maxResponseHeaderBytes)
        } catch {
            await hot.close()
            throw error
        }
        return hot
    }

    /// Ends an instance that will serve no call.
    func discard(template: ZygoteTemplate, inParkingTask: Bool = false) async {
        try? await container.close()
        output.close()
        await end(template: template, inParkingTask: inParkingTask)
    }

    /// Tells the template once that this instance has ended.
    private func end(template: ZygoteTemplate, inParkingTask: Bool = false) async {
        let first = ended.withLock { e -> Bool in
            defer { e = true }
            return !e
        }
        if first { await template.instanceEnded(self, inParkingTask: inParkingTask) }
    }
}
