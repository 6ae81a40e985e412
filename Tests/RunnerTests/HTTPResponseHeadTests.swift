@testable import NativeRuntime
import Runner
import RunnerOS
import Testing

/// A function's response head, parsed as bytes.
struct HTTPResponseHeadTests {
    func parse(_ text: String) throws(RunnerError) -> (status: Int, headers: [HTTPHeader]) {
        try HTTPFraming.responseHead(ArraySlice(Array(text.utf8)))
    }

    func message(_ text: String) -> String? {
        do throws(RunnerError) {
            _ = try parse(text)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func namesComeInLowerCaseAndValuesWithoutTheSpacesAndTabsAroundThem() throws {
        let (status, headers) = try parse("HTTP/1.1 201 Created\r\nContent-Type:  text/plain \r\nX-Empty:\r\nFn-Thing:\t a: b\t\r\nX-Ünicode: ü")
        #expect(status == 201)
        #expect(
            headers == [
                HTTPHeader(name: "content-type", value: "text/plain"), HTTPHeader(name: "x-empty", value: ""),
                HTTPHeader(name: "fn-thing", value: "a: b"), HTTPHeader(name: "x-Ünicode", value: "ü"),  // ASCII letters only: a token has no others
            ])
    }

    @Test func aStatusLineWithoutAReasonOrWithSeveralSpacesIsRead() throws {
        #expect(try parse("HTTP/1.0 200").status == 200)
        #expect(try parse("HTTP/1.1   502   Bad Gateway").status == 502)
        #expect(try parse("HTTP/1.1 200 OK").headers.isEmpty)
    }

    @Test func aStatusLineThatIsNotHTTP1WithADigitStatusIsRefusedAndQuoted() {
        for line in ["HTTP/2 200 OK", "HTTP/1.1", "HTTP/1.1 ", "HTTP/1.1 -1 Minus", "HTTP/1.1 +200 Plus", "HTTP/1.1 2x0 Odd", "HTTP/1.1 1234567890 Long", "hello"] {
            let m = message(line + "\r\nA: b")
            #expect(m?.contains("invalid status line: \(line)") == true, "\(line): \(m ?? "accepted")")
        }
    }

    @Test func aHeaderLineWithoutAColonIsRefusedAndQuoted() {
        #expect(message("HTTP/1.1 200 OK\r\nGood: yes\r\nno colon here") == "the function sent an invalid header line: no colon here")
    }

    @Test func onlyCarriageReturnLineFeedEndsALine() throws {
        let (_, headers) = try parse("HTTP/1.1 200 OK\r\nA: one\ntwo\r\nB: three")
        #expect(headers == [HTTPHeader(name: "a", value: "one\ntwo"), HTTPHeader(name: "b", value: "three")])
    }

    @Test func aHeadThatDoesNotStartAtIndexZeroIsReadTheSame() throws {
        let bytes = Array("junkHTTP/1.1 204 No Content\r\nX-A:  1 ".utf8)
        let (status, headers) = try HTTPFraming.responseHead(bytes[4...])
        #expect(status == 204 && headers == [HTTPHeader(name: "x-a", value: "1")])
    }
}
