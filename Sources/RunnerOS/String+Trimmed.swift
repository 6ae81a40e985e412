extension StringProtocol {
    /// The string without leading and trailing whitespace and newlines (kernel files end in "\n").
    public var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
