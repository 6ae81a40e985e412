import HTTPTypes

extension HTTPFields {
    /// What `self[name]` gives (the values of every field of that name, joined by ", "), without
    /// its cost for none or one: the subscript joins through a lazy map and an array even for a
    /// single field, 1.7 µs of the event loop's time a call in perf over the invoke path's
    /// five lookups.
    func value(_ name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            if found != nil { return self[name] }
            found = field.value
        }
        return found
    }
}
