import CLIOptions
import Logging
import Testing

/// `--log-format text`, the default: one line per event for people, with the logger's metadata
/// as it was when the line was logged.
struct TextLogTests {
    static func lines(_ body: (inout TextLogHandler) -> Void) throws -> [Substring] {
        let output = try JSONLogTests.output({ TextLogHandler(label: "fnrunner.test", fd: $0) }, body)
        #expect(output.isEmpty || output.hasSuffix("\n"), "each line ends with a newline")
        return output.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
    }

    @Test func aLineHasTimeLevelLoggerSortedMetadataSourceAndMessage() throws {
        let lines = try Self.lines { h in
            h[metadataKey: "instance"] = "i1"
            h.log(
                event: LogEvent(
                    level: .notice, message: "started a container", metadata: ["fn_id": "f1", "app_id": "a1"], source: "Runner",
                    file: #file, function: #function, line: #line))
        }
        let line = try #require(lines.first)
        #expect(lines.count == 1)
        let time = line.prefix { $0 != " " }
        #expect(time.count == 24 && time.hasSuffix("Z") && time.contains("T"), "\(line)")
        #expect(line.dropFirst(time.count) == " notice fnrunner.test: app_id=a1 fn_id=f1 instance=i1 [Runner] started a container")
    }

    @Test func metadataSetOrRemovedOnTheLoggerShowsInTheLinesAfterAndAnEventsOwnKeysWin() throws {
        let lines = try Self.lines { h in
            h[metadataKey: "request_id"] = "r1"
            h[metadataKey: "call_id"] = "c1"
            h.log(event: LogEvent(level: .info, message: "one", metadata: ["call_id": "c2"], source: "s", file: #file, function: #function, line: #line))
            h[metadataKey: "request_id"] = nil
            h.log(event: LogEvent(level: .error, message: "two", metadata: nil, source: "s", file: #file, function: #function, line: #line))
            h.log(event: LogEvent(level: .trace, message: "three", metadata: [:], source: "s", file: #file, function: #function, line: #line))
        }
        #expect(lines.count == 3)
        #expect(lines[0].hasSuffix(" info fnrunner.test: call_id=c2 request_id=r1 [s] one"), "\(lines[0])")
        #expect(lines[1].hasSuffix(" error fnrunner.test: call_id=c1 [s] two"), "\(lines[1])")
        #expect(lines[2].hasSuffix(" trace fnrunner.test: call_id=c1 [s] three"), "\(lines[2])")
    }

    @Test func aLineWithoutMetadataHasNoGapAndAnErrorIsShownAsMetadata() throws {
        struct Broken: Error, CustomStringConvertible { var description: String { "disk full" } }
        let lines = try Self.lines { h in
            h.log(event: LogEvent(level: .warning, message: "plain", metadata: nil, source: "s", file: #file, function: #function, line: #line))
            var failed = LogEvent(level: .error, message: "cannot record", metadata: nil, source: "s", file: #file, function: #function, line: #line)
            failed.error = Broken()
            h.log(event: failed)
        }
        #expect(lines.count == 2)
        #expect(lines[0].hasSuffix(" warning fnrunner.test: [s] plain"), "\(lines[0])")
        #expect(lines[1].hasSuffix(" error fnrunner.test: error=disk full [s] cannot record"), "\(lines[1])")
    }
}
