import CLIOptions
import FoundationEssentials
import NIOCore
import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// The server, in a binary of its own: its HTTP and SQLite libraries (and full Foundation) would
/// add ~3 ms to every start of `fnrunner run` (a larger static binary to map and relocate), so
/// `fnrunner serve` execs this program instead of carrying them.
@main
enum ServeMain {
    static func main() async {
        // A --config file is applied first: it may choose the log format, and it only adds what
        // neither the command line nor the environment gives.
        let arguments: [String]
        do {
            arguments = try ServeConfigFile.apply(
                arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment
            ) { name, value in setenv(name, value, 1) }
        } catch {
            var line = "Error: \(error)\n"
            line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
            exit(64)
        }
        CLILogging.bootstrap(arguments: arguments, environment: ProcessInfo.processInfo.environment)
        do {
            // Before anything starts NIO's loops: their number is fixed at their first use.
            if let loops = try eventLoops(FnEnvironment(ProcessInfo.processInfo.environment)) {
                NIOSingletons.groupLoopCountSuggestion = loops
            }
        } catch {
            var line = "Error: \(error)\n"
            line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
            exit(64)
        }
        await ServeCommand.main(arguments)
    }

    /// FN_EVENT_LOOPS: the event loop threads both edges (HTTP and gRPC) serve connections and run
    /// hot calls on. By default half the CPUs serve may run on, at least one: every call also
    /// wakes a function process on the same node, and fewer loops than cores keep a call's
    /// wake-ups on fewer threads. On this project's 2-CPU machine one loop took 17% less CPU a
    /// call than two under `wrk -c8`, at the same rate and with a lower p99 (BENCHMARKS.md).
    /// Nil: NIO's own NIO_SINGLETON_GROUP_LOOP_COUNT decides.
    static func eventLoops(_ env: FnEnvironment) throws(RunnerError) -> Int? {
        if env.string("FN_EVENT_LOOPS") == nil && env.string("NIO_SINGLETON_GROUP_LOOP_COUNT") != nil { return nil }
        let loops = try env.int("FN_EVENT_LOOPS", default: max(1, usableCPUs() / 2), minimum: 1)
        guard loops <= 1024 else { throw RunnerError(.invalidArgument, "FN_EVENT_LOOPS must be at most 1024, not \(loops)") }
        return loops
    }

    /// The CPUs serve may run on (its affinity mask, `Cpus_allowed` in /proc/self/status), and
    /// not more than NIO counts (a cgroup's CPU limit).
    static func usableCPUs() -> Int {
        let status = (try? FileSystem.read("/proc/self/status")) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return System.coreCount }
        let allowed = line.dropFirst("Cpus_allowed:".count).reduce(0) { n, c in n + (c.hexDigitValue?.nonzeroBitCount ?? 0) }
        return max(1, min(allowed == 0 ? System.coreCount : allowed, System.coreCount))
    }
}
