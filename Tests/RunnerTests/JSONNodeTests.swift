import Foundation
import RunnerOS
import Testing

/// The call model's JSON reader against Foundation's: the same values for valid documents, a
/// named error for invalid ones.
struct JSONNodeTests {
    /// JSONSerialization's reading of `text` in JSONNode's terms (numbers compared by value).
    static func foundation(_ any: Any) -> JSONNode {
        switch any {
        case is NSNull: return .null
        case let s as String: return .string(s)
        case let n as NSNumber: return .number(String(n.doubleValue))
        case let b as Bool: return .number(b ? "1.0" : "0.0")
        case let a as [Any]: return .array(a.map(foundation))
        case let o as [String: Any]: return .object(o.sorted { $0.key < $1.key }.map { ($0.key, foundation($0.value)) })
        default: return .null
        }
    }

    /// The same normalization for ours: numbers by value (booleans as 1 and 0, as Foundation
    /// may give them as NSNumbers), members sorted.
    static func normalized(_ node: JSONNode) -> JSONNode {
        switch node {
        case .number(let text): return .number(String(Double(text)!))
        case .bool(let b): return .number(b ? "1.0" : "0.0")
        case .array(let items): return .array(items.map(normalized))
        case .object(let members): return .object(members.sorted { $0.0 < $1.0 }.map { ($0.0, normalized($0.1)) })
        default: return node
        }
    }

    static let valid = [
        #"{}"#, #"[]"#, #" { "a" : [ 1 , -2.5e3 , 0 , 0.25 , 1E+2 ] } "#, #""plain""#, "true", "null",
        #"{"s":"tab\tquote\" slash\/ back\\ nl\n cr\r bs\b ff\f"}"#,
        #"{"u":"\u00e9\u4e2d\ud83d\ude00 and é中😀"}"#,
        #"{"nested":{"a":{"b":{"c":[[],[{}],[null,false,true]]}}}}"#,
        #"{"annotations":{"fnproject.io/fn/invokeEndpoint":"http://x/invoke/1","k":{"n":1}},"memory":128}"#,
    ]

    @Test(arguments: valid)
    func validDocumentsReadAsFoundationReadsThem(_ text: String) throws {
        let ours = try JSONNode.parse(text)
        let theirs = Self.foundation(try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]))
        #expect(Self.normalized(ours) == theirs)
    }

    @Test(arguments: valid)
    func compactTextReadsBackAsTheSameValue(_ text: String) throws {
        let node = try JSONNode.parse(text)
        #expect(try JSONNode.parse(node.compactText) == node)
    }

    @Test func compactTextHasNoWhitespaceOutsideStrings() throws {
        let node = try JSONNode.parse(" {\n \"a b\" : [ 1 , { \"c\" : null } ] ,\t\"d\" : \" x \" } ")
        #expect(node.compactText == #"{"a b":[1,{"c":null}],"d":" x "}"#)
    }

    @Test func membersKeepTheirOrderAndARepeatedKeyReadsAsItsLast() throws {
        let node = try JSONNode.parse(#"{"b":1,"a":2,"b":3}"#)
        #expect(node.member("b") == .number("3"))
        #expect(node.compactText == #"{"b":1,"a":2,"b":3}"#)
    }

    @Test func numbersKeepTheirTextAndReadAsTruncatedIntegers() throws {
        #expect(try JSONNode.parse("128").int == 128)
        #expect(try JSONNode.parse("1.9").int == 1)
        #expect(try JSONNode.parse("-3e2").int == -300)
        #expect(try JSONNode.parse("1e300").int == nil)
        #expect(try JSONNode.parse("1.50").compactText == "1.50")
        #expect(try JSONNode.parse(#""12""#).int == nil)
    }

    @Test func aLoneSurrogateBecomesTheReplacementCharacter() throws {
        #expect(try JSONNode.parse(#""a\ud800b""#) == .string("a\u{FFFD}b"))
        #expect(try JSONNode.parse(#""\udc00""#) == .string("\u{FFFD}"))
    }

    static let invalid: [(String, String)] = [
        ("", "the document ended where a value belongs at byte 0"),
        ("{", "expected a member name at byte 1"),
        (#"{"a" 1}"#, "expected ':' after a member name at byte 5"),
        (#"{"a":1,}"#, "expected a member name at byte 7"),
        ("[1 2]", "expected ',' or ']' in an array at byte 3"),
        ("[1,", "the document ended where a value belongs at byte 3"),
        ("01", "unexpected text after the value at byte 1"),
        ("-", "a number needs a digit at byte 1"),
        ("1.", "a number's fraction needs a digit at byte 2"),
        ("1e", "a number's exponent needs a digit at byte 2"),
        ("tru", "the document ended inside true at byte 3"),
        (#"{"a":t}"#, "unexpected character '}' at byte 6"),
        ("fals", "the document ended inside false at byte 4"),
        ("nul!", "unexpected character '!' at byte 3"),
        ("'a'", "unexpected character ''' at byte 0"),
        (#""abc"#, "the document ended inside a string at byte 4"),
        ("\"a\u{1}\"", "a control character inside a string at byte 2"),
        (#""\x""#, "an unknown escape \\'x' at byte 2"),
        (#""\u12g4""#, "a \\u escape needs four hex digits at byte 5"),
        (#"{} {}"#, "unexpected text after the value at byte 3"),
    ]

    @Test(arguments: invalid)
    func invalidDocumentsAreRefusedNamingWhatAndWhere(_ text: String, _ message: String) {
        #expect(throws: RunnerError(.invalidArgument, message, step: "parse JSON")) { try JSONNode.parse(text) }
    }

    @Test func nestingDeeperThanTheLimitIsRefusedNotRecursedInto() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: RunnerError.self) { try JSONNode.parse(deep) }
        let fits = String(repeating: "[", count: JSONNode.maxDepth) + String(repeating: "]", count: JSONNode.maxDepth)
        #expect((try? JSONNode.parse(fits)) != nil)
    }
}
