import HTTPTypes
import NIOHTTP1
import NIOHTTPTypesHTTP1
import Testing

@testable import RunnerAPI

/// The server's codec converts every request head as NIOHTTPTypesHTTP1's server codec does,
/// whatever form its target takes; it only skips that codec's URL parse of origin-form ones.
struct OriginFormServerCodecTests {
    static func head(_ method: HTTPMethod, _ target: String) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target)
        head.headers.add(name: "Host", value: "127.0.0.1:8080")
        head.headers.add(name: "Cookie", value: "a=1; b=2")
        head.headers.add(name: "X-Thing", value: "one")
        head.headers.add(name: "x-thing", value: "two")
        return head
    }

    @Test(arguments: [
        "/invoke/01ABC", "/t/app/x?q=1&r=%20", "/", "//other/path", "/a b", "/?", "http://host:8080/p?q=1", "HTTP://H",
        "*", "example.com:443", "",
    ])
    func requestHeadsConvertAsTheLibrarysCodecConvertsThem(target: String) throws {
        for method in [HTTPMethod.POST, .GET, .OPTIONS, .CONNECT] {
            let head = Self.head(method, target)
            #expect(try OriginFormServerCodec.request(head) == HTTPRequest(head, secure: false, splitCookie: false), "\(method) \(target)")
        }
    }

    @Test func aMethodHTTPTypesRefuseIsAnErrorAsWithTheLibrarysCodec() {
        let head = Self.head(.RAW(value: "NOT A METHOD"), "/invoke/01ABC")
        #expect(throws: (any Error).self) { try HTTPRequest(head, secure: false, splitCookie: false) }
        #expect(throws: (any Error).self) { try OriginFormServerCodec.request(head) }
    }
}
