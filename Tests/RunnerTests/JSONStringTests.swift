import Foundation
import RunnerOS
import Testing

/// JSON string literals as call records and log lines write them, as text and as bytes.
struct JSONStringTests {
    @Test(arguments: ["", "plain", "quote \" and back\\slash", "line\nfeed\r\ttab \u{01}\u{1f}\u{7f}", "ü ñ 🎉", "\"", "\u{0}"])
    func bothFormsWriteTheSameLiteralAndFoundationReadsTheStringBack(_ s: String) throws {
        var text = ""
        JSONString.append(s, to: &text)
        var bytes: [UInt8] = []
        JSONString.append(s, to: &bytes)
        #expect(Array(text.utf8) == bytes)
        let read = try JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed) as? String
        #expect(read == s)
    }

    @Test func controlCharactersQuotesAndBackslashesAreTheOnlyEscapes() {
        #expect(JSONString.quoted("a\"b\\c\nd\re\tf\u{0b}g é") == #""a\"b\\c\nd\re\tf\u000bg é""#)
    }
}
