/// The deadlines of `ReadinessLoop`'s waits, earliest first: a binary min-heap of (deadline,
/// token). Entries of waits that ended early stay until they come up or the heap is rebuilt;
/// their tokens are simply no longer waiting by then.
struct DeadlineHeap {
    struct Entry {
        var deadline: UInt64
        var token: UInt64
    }

    private(set) var entries: [Entry] = []

    var count: Int { entries.count }
    var first: Entry? { entries.first }

    mutating func push(_ deadline: UInt64, _ token: UInt64) {
        entries.append(Entry(deadline: deadline, token: token))
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if entries[parent].deadline <= entries[i].deadline { break }
            entries.swapAt(parent, i)
            i = parent
        }
    }

    mutating func popFirst() -> Entry? {
        guard !entries.isEmpty else { return nil }
        entries.swapAt(0, entries.count - 1)
        let top = entries.removeLast()
        var i = 0
        while true {
            let left = 2 * i + 1
            let right = left + 1
            var smallest = i
            if left < entries.count && entries[left].deadline < entries[smallest].deadline { smallest = left }
            if right < entries.count && entries[right].deadline < entries[smallest].deadline { smallest = right }
            if smallest == i { break }
            entries.swapAt(i, smallest)
            i = smallest
        }
        return top
    }

    /// Keeps only the entries `keep` accepts (the waits still in progress).
    mutating func rebuild(keeping keep: (Entry) -> Bool) {
        let kept = entries.filter(keep)
        entries = []
        entries.reserveCapacity(kept.count)
        for e in kept { push(e.deadline, e.token) }
    }
}
