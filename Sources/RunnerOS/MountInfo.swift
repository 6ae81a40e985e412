/// One line of /proc/self/mountinfo.
public struct MountInfoEntry: Sendable, Equatable {
    public var mountID: Int
    public var parentID: Int
    /// The path inside the filesystem that is mounted (not "/" for bind mounts and cgroup namespaces).
    public var root: String
    public var mountPoint: String
    public var options: [String]
    public var fsType: String
    public var source: String
    public var superOptions: [String]
}

/// Parser for /proc/self/mountinfo (proc(5)), the only reliable way to learn the cgroup layout
/// and to find mounts an earlier runner left behind.
public enum MountInfo {
    public static func current() throws(RunnerError) -> [MountInfoEntry] {
        try parse(FileSystem.read("/proc/self/mountinfo"))
    }

    public static func parse(_ text: String) throws(RunnerError) -> [MountInfoEntry] {
        var entries: [MountInfoEntry] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 3,
                let mountID = Int(fields[0]), let parentID = Int(fields[1])
            else {
                throw RunnerError(.invalidArgument, "malformed mountinfo line: \(line)", step: "parse mountinfo")
            }
            entries.append(
                MountInfoEntry(
                    mountID: mountID,
                    parentID: parentID,
                    root: unescape(fields[3]),
                    mountPoint: unescape(fields[4]),
                    options: fields[5].split(separator: ",").map(String.init),
                    fsType: fields[dash + 1],
                    source: unescape(fields[dash + 2]),
                    superOptions: fields.count > dash + 3 ? fields[dash + 3].split(separator: ",").map(String.init) : []
                ))
        }
        return entries
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo octal.
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 4 <= bytes.count,
                let v = UInt8(String(decoding: bytes[(i + 1)..<(i + 4)], as: UTF8.self), radix: 8)
            {
                out.append(v)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
