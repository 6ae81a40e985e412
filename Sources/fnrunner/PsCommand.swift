import ArgumentParser
import FoundationEssentials
import Runner
import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner ps`: the hot containers of a running `fnrunner serve`.
struct PsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List the hot containers of a running fnrunner serve.")

    @Option(help: "The server's loopback port (FN_PORT when not given; else 8080).")
    var port: Int?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    mutating func run() async throws {
        let port = self.port ?? ProcessInfo.processInfo.environment["FN_PORT"].flatMap { Int($0) } ?? 8080
        let answer = try await BlockingThread.run { () throws(RunnerError) in
            try LoopbackHTTP.exchange(port: port, "GET", "/v2/runner/containers", body: [], headers: [])
        }
        guard answer.status == 200 else {
            throw RunnerError(.unavailable, "the server on port \(port) answered \(answer.status): \(answer.text.prefix(200))", step: "ps")
        }
        if json {
            print(answer.text)
            return
        }
        struct Listing: Decodable { var items: [ContainerInfo] }
        let listing = try JSONDecoder().decode(Listing.self, from: Data(answer.body))
        print(["CONTAINER", "FN", "STATE", "FROZEN FOR", "MEMORY", "CALLS"].joined(separator: "\t"))
        for c in listing.items {
            let frozen = c.frozenForMillis.map { "\(Double($0) / 1000)s" } ?? "-"
            let memory = c.memoryBytes.map { "\($0 >> 10) KiB / \(c.memoryLimitBytes >> 20) MiB" } ?? "-"
            let state = c.state == "paused" ? "frozen" : c.state
            print([c.name, c.fnID, state, frozen, memory, String(c.calls)].joined(separator: "\t"))
        }
    }
}
