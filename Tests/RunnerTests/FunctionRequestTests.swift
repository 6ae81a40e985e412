import RunnerOS
import Testing

@testable import Runner

/// Which of a caller's headers a function is given, and how they are named.
struct FunctionRequestTests {
    @Test func connectionScopedRunnerSetAndContentTypeHeadersAreNotPassedInAnyCase() {
        let request = FunctionRequest(headers: [
            ("CONNECTION", "close"), ("Keep-Alive", "timeout=5"), ("te", "trailers"), ("Host", "fn.test"), ("content-LENGTH", "3"),
            ("Fn-Call-Id", "forged"), ("FN-DEADLINE", "forged"), ("Content-Type", "text/plain"), ("x-foo-bar", "1"), ("Accept", "*/*"),
        ])
        #expect(request.passedHeaders.map { "\($0.0)=\($0.1)" } == ["X-Foo-Bar=1", "Accept=*/*"])
    }

    @Test func aHeaderWhoseNameOrValueHoldsACarriageReturnOrLineFeedIsNotPassed() {
        // A CR LF pair is one Character in Swift: a check by Characters for "\r" or "\n" misses it.
        let request = FunctionRequest(headers: [
            ("X-Value", "a\r\nInjected: yes"), ("X-Name\r\nInjected", "b"), ("X-Cr", "c\rd"), ("X-Lf", "e\nf"), ("X-Colon:", "g"),
            ("", "empty name"), ("X-Fine", "h"),
        ])
        #expect(request.passedHeaders.map { "\($0.0)=\($0.1)" } == ["X-Fine=h"])
    }

    @Test func namesAreMatchedIgnoringCaseOnlyAndByTheirWholeLength() {
        #expect(!HopByHop.isPassedOn("Transfer-Encoding") && !HopByHop.isPassedOn("HOST") && !HopByHop.isPassedOn("fn-call-id"))
        #expect(HopByHop.contains("Proxy-Connection") && !HopByHop.contains("Host"))
        for name in ["Connectiom", "Connection2", "Hos", "T", "Upgrade-", "Host-Name", "Tf", "X-Te"] {
            #expect(HopByHop.isPassedOn(name), "\(name)")
        }
        // Case folds letters only: a byte 0x20 apart from '-' is not a match.
        #expect(HopByHop.isPassedOn("keep\rlive") && HopByHop.isPassedOn("keep\u{0D}alive"))
    }

    @Test func aCallIDOrContentTypeWithALineBreakIsRefusedWhenTheCallIsMade() async throws {
        try await FakeAgentHarness.withAgent { agent, _, _ in
            for request in [FunctionRequest(callID: "01A\r\nX-Injected: yes"), FunctionRequest(contentType: "text/plain\rX: y")] {
                let error = #expect(throws: RunnerError.self) { try agent.makeCall(FakeAgentHarness.function(), request) }
                #expect(error?.code == .invalidArgument && error?.message.contains("line break") == true, "\(String(describing: error))")
            }
            let made = try agent.makeCall(FakeAgentHarness.function(), FunctionRequest(callID: "01A"))
            #expect(made.id == "01A")
        }
    }
}
