extension Result {
    /// The error of a failed result, nil for a success: for code that reports either outcome
    /// the same way (a call's record, its span, an LB's final message).
    public var failure: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}
