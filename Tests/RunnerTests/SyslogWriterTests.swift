import Logging
import RunnerOS
import TestSupport
import Testing

@testable import NativeRuntime
@testable import Runner

#if canImport(Glibc)
import Glibc
#endif

/// Function output as syslog messages: Fn's syslog_url read, lines framed as Docker's syslog
/// driver frames them, over real UDP and TCP sockets on 127.0.0.1.
struct SyslogWriterTests {
    @Test func aSyslogURLIsReadForUDPAndTCPWithPort514UnlessGiven() throws {
        let udp = try SyslogWriter.parse(" udp://logs.example.test:1514 ")
        #expect(udp == .init(transport: .udp, host: "logs.example.test", port: "1514"))
        #expect(try SyslogWriter.parse("tcp://10.0.0.1") == .init(transport: .tcp, host: "10.0.0.1", port: "514"))
        #expect(try SyslogWriter.parse("TCP://[::1]:601/") == .init(transport: .tcp, host: "::1", port: "601"))
    }

    @Test func schemesFnAcceptsButFnrunnerDoesNotDeliverToAndBadAddressesAreNamed() {
        for url in ["unix:///dev/log", "unixgram:///dev/log", "tcp+tls://logs:6514"] {
            let error = #expect(throws: RunnerError.self) { try SyslogWriter.parse(url) }
            #expect(error?.code == .unsupported && error?.message.contains("udp and tcp") == true, "\(url)")
        }
        for url in ["logs:514", "udp://:514", "tcp://logs:0", "tcp://logs:http", "udp://logs:70000"] {
            let error = #expect(throws: RunnerError.self) { try SyslogWriter.parse(url) }
            #expect(error?.code == .invalidArgument && error?.message.contains("\"\(url)\"") == true, "\(url)")
        }
    }

    @Test func linesSplitAcrossWritesBecomeOneMessageEachAndALastUnfinishedLineIsSentOnClose() async throws {
        for transport in [SyslogReceiver.Transport.udp, .tcp] {
            let receiver = try SyslogReceiver(transport)
            let writer = try await SyslogWriter.connect(url: receiver.url, tag: "app_id=a,fn_id=f", severity: .err, logger: Logger(label: "test"))
            writer.write(Array("first li".utf8))
            writer.write(Array("ne\nsecond line\nunfin".utf8))
            writer.write(Array("ished".utf8))
            #expect(await receiver.waitFor("second line\n"), "\(transport): \(receiver.text)")
            #expect(!receiver.text.contains("unfinished"), "an unfinished line waits for its end")
            writer.close()
            writer.write(Array("after close\n".utf8))
            #expect(await receiver.waitFor("unfinished\n"), "\(transport): \(receiver.text)")
            let lines = receiver.text.split(separator: "\n").filter { $0.contains(" app_id=a,fn_id=f ") }
            #expect(lines.count == 3 && lines.allSatisfy { $0.hasPrefix("<11>1 ") }, "user.err: \(lines)")
            #expect(receiver.messages(tag: "app_id=a,fn_id=f") == ["first line", "second line", "unfinished"])
            #expect(!receiver.text.contains("after close"))
        }
    }

    @Test func aLineLongerThan16KiBIsSentAsSeveralMessages() async throws {
        let receiver = try SyslogReceiver(.tcp)
        let writer = try await SyslogWriter.connect(url: receiver.url, tag: "t", severity: .info, logger: Logger(label: "test"))
        writer.write([UInt8](repeating: 0x78, count: 40_000) + Array(" end\n".utf8))
        #expect(await receiver.waitFor(" end\n"), "\(receiver.text.count) bytes")
        let sizes = receiver.messages(tag: "t").map(\.count)
        #expect(sizes == [16384, 16384, 40_000 - 2 * 16384 + 4], "\(sizes)")
        writer.close()
    }

    @Test func aTCPSyslogThatIsNotListeningIsAnErrorWhenConnecting() async throws {
        let port = try Host.freeLoopbackPort()
        let error = await #expect(throws: RunnerError.self) {
            try await SyslogWriter.connect(url: "tcp://127.0.0.1:\(port)", tag: "t", severity: .info, logger: Logger(label: "test"))
        }
        #expect(error?.step == "connect" && error?.errno == ECONNREFUSED, "\(String(describing: error))")
    }
}
