/// Header names in the form Go's net/http gives them (`textproto.CanonicalMIMEHeaderKey`).
///
/// Fn's agent is a Go server: every header a function sees from it, whatever case the client
/// sent, is in this form (`x-foo-bar` → `X-Foo-Bar`), and FDKs and functions that look headers
/// up case-sensitively depend on it.
public enum GoHeaderName {
    /// `X-Foo-Bar` for `x-FOO-bar`; a name with a byte that is not an HTTP token character (a
    /// space, say) comes back unchanged, as Go leaves it.
    public static func canonical(_ name: String) -> String {
        // Every call passes each header through here: a name already in this form (the usual
        // case) comes back as it is, without a copy.
        var upper = true
        var changes = false
        for c in name.utf8 {
            guard isTokenByte(c) else { return name }
            if (upper && c >= 0x61 && c <= 0x7A) || (!upper && c >= 0x41 && c <= 0x5A) { changes = true }
            upper = c == 0x2D
        }
        guard changes else { return name }
        // Written in place (a short name is a small string: no allocation at all).
        return String(unsafeUninitializedCapacity: name.utf8.count) { out in
            upper = true
            for (i, c) in name.utf8.enumerated() {
                if upper, c >= 0x61, c <= 0x7A {
                    out[i] = c - 0x20
                } else if !upper, c >= 0x41, c <= 0x5A {
                    out[i] = c + 0x20
                } else {
                    out[i] = c
                }
                upper = c == 0x2D  // '-'
            }
            return name.utf8.count
        }
    }

    /// RFC 9110 tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~.
    static func isTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }
}
