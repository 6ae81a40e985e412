import CLIOptions
import Foundation
import Logging
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--log-format json`: one JSON object per line that a log collector can parse and search by
/// field, whatever the message and metadata hold.
struct JSONLogTests {
    /// What a handler made by `make` for a pipe's write end writes for `body`.
    static func output<H: LogHandler>(_ make: (Int32) -> H, _ body: (inout H) -> Void) throws -> String {
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        var handler = make(fds[1])
        handler.logLevel = .trace
        body(&handler)
        close(fds[1])
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        close(fds[0])
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The lines a handler writes for `body`, through a pipe, parsed as JSON.
    static func lines(_ body: (inout JSONLogHandler) -> Void) throws -> [[String: Any]] {
        try output({ JSONLogHandler(label: "fnrunner.test", fd: $0) }, body).split(separator: "\n").map { line in
            try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
    }

    @Test func eachLineIsOneObjectWithTimeLevelLoggerMessageAndTheMetadataAtTheTop() throws {
        let lines = try Self.lines { h in
            h.metadata["instance"] = "i1"
            h.log(
                event: LogEvent(
                    level: .notice, message: "started a container", metadata: ["app_id": "a1", "fn_id": "f1", "start_ms": "6.2"],
                    source: "Runner", file: #file, function: #function, line: #line))
            h.log(event: LogEvent(level: .debug, message: "second", metadata: nil, source: "Runner", file: #file, function: #function, line: #line))
        }
        #expect(lines.count == 2)
        let first = lines[0]
        #expect(first["level"] as? String == "notice" && first["logger"] as? String == "fnrunner.test")
        #expect(first["message"] as? String == "started a container")
        #expect(first["app_id"] as? String == "a1" && first["fn_id"] as? String == "f1" && first["instance"] as? String == "i1")
        let time = try #require(first["time"] as? String)
        #expect(time.count == 24 && time.hasSuffix("Z") && time.contains("T"), "\(time)")
        #expect(lines[1]["level"] as? String == "debug" && lines[1]["instance"] as? String == "i1")
    }

    @Test func quotesNewlinesControlCharactersAndNestedValuesSurviveAndReservedKeysMoveAside() throws {
        let tricky = "a \"quoted\" \\ path\nsecond line\t\u{1}\u{7f} é 🐍"
        let lines = try Self.lines { h in
            h.log(
                event: LogEvent(
                    level: .warning, message: "\(tricky)",
                    metadata: ["output": "\(tricky)", "message": "mine", "list": ["x", "y"], "map": ["k": "v"]],
                    source: "s", file: #file, function: #function, line: #line))
        }
        let line = try #require(lines.first)
        #expect(line["message"] as? String == tricky)
        #expect(line["output"] as? String == tricky)
        #expect(line["metadata.message"] as? String == "mine")
        #expect(line["list"] as? [String] == ["x", "y"])
        #expect((line["map"] as? [String: String]) == ["k": "v"])
    }

    @Test func theFormatComesFromTheFlagThenTheEnvironmentElseText() {
        #expect(LogFormat.chosen(arguments: ["serve"], environment: [:]) == .text)
        #expect(LogFormat.chosen(arguments: ["serve", "--log-format", "json"], environment: [:]) == .json)
        #expect(LogFormat.chosen(arguments: ["serve", "--log-format=json"], environment: ["FNRUNNER_LOG_FORMAT": "text"]) == .json)
        #expect(LogFormat.chosen(arguments: ["serve"], environment: ["FNRUNNER_LOG_FORMAT": "json"]) == .json)
        #expect(LogFormat.chosen(arguments: ["serve", "--log-format", "yaml"], environment: [:]) == .text)
    }

    @Test func anUnknownLogFormatIsRefusedByName() async throws {
        let run = try Subprocess.fnrunner(["import", "--log-format", "yaml", "/nonexistent-fnrunner-test", "--name", "a/b:c"])
        #expect(await run.exit() != 0)
        #expect(run.stderr.contains("--log-format must be text or json, not \"yaml\""), "\(run.stderr)")
    }
}
