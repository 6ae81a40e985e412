import RunnerOS
import TestSupport
import Testing

@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct BenchCommandTests {
    /// A row of the bench's table: name, samples, median, p99, min (µs).
    struct Row {
        let name: String
        let count: Int
        let median: Double
        let p99: Double
        let min: Double

        init?(_ line: Substring) {
            // "| name | n | median | p99 | min |": one space on each side of every cell.
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { String($0.dropFirst().dropLast()) }
            guard cells.count >= 6, let n = Int(cells[2]), let median = Double(cells[3]), let p99 = Double(cells[4]),
                let min = Double(cells[5])
            else { return nil }
            (name, count, self.median, self.p99, self.min) = (cells[1], n, median, p99, min)
        }
    }

    @Test func everyRowItPrintsHasItsSamplesAndAMedianBetweenItsMinimumAndItsP99() async throws {
        try await withSharedGate {
            let env = TestEnvironment("bench")
            defer { env.cleanUp() }
            let p = try Subprocess.fnrunner([
                "bench", "--rootfs", try await Fixtures.busybox(), "--iterations", "9", "--pool-size", "0", "--gap-iterations", "0",
                "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot,
            ])
            #expect(await p.exit() == 0, "\(p.stderr)")
            let rows = p.stdout.split(separator: "\n").compactMap(Row.init)
            let names = rows.map(\.name)
            for expected in ["start (clone", "freeze (write", "thaw (write", "hot call: HTTP/1.1"] {
                #expect(names.contains { $0.hasPrefix(expected) }, "no row \(expected)… in\n\(p.stdout)")
            }
            for row in rows {
                #expect(row.count == 9, "\(row.name)")
                #expect(row.median > 0 && row.min <= row.median && row.median <= row.p99, "\(row.name): \(row.min) ≤ \(row.median) ≤ \(row.p99)")
            }
            #expect(env.cgroupDirectories().isEmpty)
        }
    }
}
