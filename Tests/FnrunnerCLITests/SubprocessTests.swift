import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The test harness's own processes: what a spawned command gets from the test process.
struct SubprocessTests {
    /// NIO's sockets are not close-on-exec. A command that kept a listening socket of another
    /// test's ended server once held a port a registry was then started on, and the registry's
    /// readiness check hung on a connection nobody would accept.
    @Test func aSpawnedCommandKeepsNoDescriptorOfTheTestProcessButItsStdio() async throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)  // inheritable, as NIO's are
        #expect(fd > 2)
        defer { close(fd) }
        let listed = try await Shell.output("ls /proc/self/fd")
        let open = listed.split(whereSeparator: \.isNewline).compactMap { Int32($0) }
        #expect(open.contains(0) && open.contains(1) && open.contains(2), "\(open)")
        #expect(!open.contains(fd), "the child has the test process's descriptor \(fd): \(open)")
        #expect(open.allSatisfy { $0 <= 3 }, "only stdio and ls's own directory: \(open)")
    }
}
