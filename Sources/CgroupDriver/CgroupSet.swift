/// The directories that make up one cgroup across every hierarchy the runner uses.
///
/// On a pure v2 host this is one directory; on a hybrid host it is a v1 directory per
/// controller plus one in the v2 tree (for freeze, kill and events).
public struct CgroupSet: Sendable, Equatable, CustomStringConvertible {
    /// Path relative to each hierarchy's mount point ("fnrunner/<instance>/<container>").
    public let relativePath: String
    /// Directory in the v2 tree, if the host has one.
    public let v2Path: String?
    /// Directory per v1 controller ("memory" -> ".../memory/fnrunner/i/c"); co-mounted controllers share one.
    public let v1Paths: [String: String]

    public init(relativePath: String, v2Path: String?, v1Paths: [String: String]) {
        self.relativePath = relativePath
        self.v2Path = v2Path
        self.v1Paths = v1Paths
    }

    /// Every distinct directory, v1 first, v2 last (creation order; deletion goes in reverse).
    public var allPaths: [String] {
        var seen = Set<String>()
        var out: [String] = []
        for controller in v1Paths.keys.sorted() {
            let p = v1Paths[controller]!
            if seen.insert(p).inserted { out.append(p) }
        }
        if let v2Path { out.append(v2Path) }
        return out
    }

    /// The v1 directories a new process must join (v2 placement happens at clone time with
    /// CLONE_INTO_CGROUP).
    public var v1AttachPaths: [String] {
        var seen = Set<String>()
        return v1Paths.keys.sorted().compactMap { seen.insert(v1Paths[$0]!).inserted ? v1Paths[$0]! : nil }
    }

    public var description: String { relativePath }
}
