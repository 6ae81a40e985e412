import ArgumentParser
import FoundationEssentials
import Runner
import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner ps`: the hot containers of a running `fnrunner serve`, once or (`--watch`) over
/// and over, as `watch` would show them.
struct PsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List the hot containers of a running fnrunner serve.")

    @Option(help: "The server's loopback port (FN_PORT when not given; else 8080).")
    var port: Int?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Flag(help: "Show the table again every --interval seconds until interrupted.")
    var watch = false

    @Option(help: "Seconds between two tables with --watch.")
    var interval: Double = 2

    func validate() throws {
        guard interval >= 0.1 && interval <= 3600 else { throw ValidationError("--interval must be 0.1 to 3600 seconds, not \(interval)") }
    }

    mutating func run() async throws {
        let port = self.port ?? ProcessInfo.processInfo.environment["FN_PORT"].flatMap { Int($0) } ?? 8080
        let terminal = isatty(1) != 0
        while true {
            let text = try await Self.fetch(port: port)
            if json {
                print(text)
            } else {
                struct Listing: Decodable { var items: [ContainerInfo] }
                let listing = try JSONDecoder().decode(Listing.self, from: Data(text.utf8))
                // On a terminal each table replaces the last; in a pipe they follow one another.
                if watch && terminal { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                if watch { print("fnrunner ps: \(listing.items.count) containers at \(WallClock.rfc3339(WallClock.nowNanos(), millis: false))") }
                print(Self.table(listing.items))
            }
            guard watch else { return }
            fflush(nil)
            try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
        }
    }

    static func fetch(port: Int) async throws -> String {
        let answer = try await BlockingThread.run { () throws(RunnerError) in
            try LoopbackHTTP.exchange(port: port, "GET", "/v2/runner/containers", body: [], headers: [])
        }
        guard answer.status == 200 else {
            throw RunnerError(.unavailable, "the server on port \(port) answered \(answer.status): \(answer.text.prefix(200))", step: "ps")
        }
        return answer.text
    }

    /// Columns: state and for how long, calls served, memory now / peak / limit, CPU used,
    /// and the last call.
    static func table(_ items: [ContainerInfo]) -> String {
        var rows = [["CONTAINER", "FN", "STATE", "FOR", "CALLS", "MEMORY NOW/PEAK/LIMIT", "CPU", "LAST CALL"]]
        for c in items {
            let state = c.state == "paused" ? "frozen" : c.state
            let since = c.stateForMillis.map(duration) ?? c.frozenForMillis.map(duration) ?? "-"
            let now = c.memoryCurrentBytes.map(mebibytes) ?? "-"
            let peak = (c.memoryPeakBytes ?? c.memoryBytes).map(mebibytes) ?? "-"
            let memory = "\(now)/\(peak)/\(mebibytes(c.memoryLimitBytes))"
            let cpu = c.cpuMillis.map { duration($0) } ?? "-"
            rows.append([c.name, c.fnID, state, since, String(c.calls), memory, cpu, c.lastCallID ?? "-"])
        }
        let widths = rows[0].indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func duration(_ millis: UInt64) -> String {
        if millis < 1000 { return "\(millis)ms" }
        if millis < 60_000 { return "\(millis / 1000).\(millis % 1000 / 100)s" }
        if millis < 3_600_000 { return "\(millis / 60_000)m\(millis % 60_000 / 1000)s" }
        return "\(millis / 3_600_000)h\(millis % 3_600_000 / 60_000)m"
    }

    static func mebibytes(_ bytes: UInt64) -> String {
        let tenths = bytes * 10 >> 20
        return "\(tenths / 10).\(tenths % 10)M"
    }
}
