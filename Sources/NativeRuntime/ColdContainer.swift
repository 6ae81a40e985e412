import Runner
import CRunnerShim
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One cold call (format `default`): a container that gets the request body on stdin and
/// whose stdout, once it has exited, is the response; its stderr is the call's log.
enum ColdContainer {
    static func run(_ task: ContainerTask, request: FunctionRequest, log: CallLog, driver: NativeDriver) async throws(RunnerError)
        -> ColdResult
    {
        var phases = StartPhases()
        var (spec, _) = try await driver.spec(for: task)
        phases.mark("image")
        var input: [Int32] = [-1, -1]
        if let e = Pipes.make(&input) { throw .system("pipe2", errno: e, "cannot create the stdin pipe of \(task.name)") }
        let stdout: ContainerOutput
        let stderr: ContainerOutput
        do throws(RunnerError) {
            stdout = try ContainerOutput(
                name: task.name, logger: driver.logger, collectLimit: task.maxOutputBytes > 0 ? task.maxOutputBytes : Int.max)
            do throws(RunnerError) {
                stderr = try ContainerOutput(
                    name: task.name, logger: driver.logger, syslog: try await driver.syslog(for: task, .err),
                    nodeLog: driver.nodeLog(for: task, stream: "stderr"))
            } catch {
                stdout.close()
                throw error
            }
        } catch {
            close(input[0])
            close(input[1])
            throw error
        }
        stderr.attach(log)
        spec.stdin = input[0]
        spec.stdout = stdout.writeFD
        spec.stderr = stderr.writeFD
        let container: Container
        do {
            container = try await driver.sandbox.startOnWorkerThread(spec, name: task.name)
        } catch {
            close(input[0])
            close(input[1])
            stdout.close()
            stderr.close()
            throw error
        }
        close(input[0])
        stdout.containerStarted()
        stderr.containerStarted()
        phases.sandboxStarted(container)
        driver.reportStarted(task, format: FunctionFormat.cold.rawValue, phases)
        defer {
            stdout.close()
            stderr.close()
        }
        // The body goes in beside the wait: a function that does not read it must not hold up
        // the wait for its exit (the write ends with EPIPE when it exits).
        let writer = input[1]
        let body = request.body
        async let fed: Void = feed(writer, body)
        let exit = await raceWithTimeout(task.timeout, { await container.waitUnlessCancelled() })
        guard let exit else {
            try? container.kill()
            _ = await fed
            try? await container.close()
            throw RunnerError(.timeout, "the function ran past its timeout of \(task.timeout)", step: "run container")
        }
        _ = await fed
        // Everything written before the exit is in the pipes; wait for their ends (a grandchild
        // holding them open gets a short grace, then is ignored).
        let (out, overflowed) = await stdout.collected(waitingUpTo: .seconds(1))
        await stderr.waitForEnd(upTo: .milliseconds(200))
        let counters = container.counters
        let oom = exit.outOfMemory || ((try? container.memoryEvents())?.oomKills ?? 0) > 0
        try? await container.close()
        if overflowed && !oom { throw CallErrors.responseTooBig() }
        return ColdResult(exitCode: exit.process.shellStatus, outOfMemory: oom, stdout: out, counters: counters)
    }

    private static func feed(_ fd: Int32, _ body: [UInt8]) async {
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var offset = 0
        while offset < body.count {
            let n = body.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN {
                // The pipe is full until the function reads; its exit (or kill) ends the wait.
                guard (try? await ReadinessLoop.shared.wait(for: .writable, on: fd, deadlineNanos: .max)) == .ready else { return }
                continue
            }
            if n <= 0 { break }
            offset += n
        }
    }
}
