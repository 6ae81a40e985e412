import CArchive
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How an image says its process runs: argv from Entrypoint + Cmd, Env, WorkingDir, and User
/// resolved against the image's own /etc/passwd and /etc/group.
public struct ImageProcess: Sendable, Equatable {
    public var argv: [String]
    public var env: [String]
    public var workingDirectory: String
    public var uid: UInt32
    public var gid: UInt32

    /// - Parameters:
    ///   - layers: the image's layer directories, top first (whiteouts in overlay format).
    ///   - command: replaces Cmd when not empty (as `docker run IMAGE ARGS...` does).
    ///   - user: overrides the image's User when given.
    ///   - defaultUser: used when neither `user` nor the image names one.
    ///   - allowVolumes: Fn refuses images that declare volumes; so do we unless allowed.
    public static func make(
        config: ImageConfig, layers: [String], command: [String] = [], user: String? = nil,
        defaultUser: (UInt32, UInt32) = (1000, 1000), allowVolumes: Bool = false
    ) throws(RunnerError) -> ImageProcess {
        let run = config.config ?? ImageConfig.RunConfig()
        if let volumes = run.Volumes, !volumes.isEmpty, !allowVolumes {
            throw RunnerError(
                .imageHasVolume,
                "image has Volume definition (\(volumes.keys.sorted().joined(separator: ", "))): functions cannot use volumes",
                step: "image config")
        }
        let argv = (run.Entrypoint ?? []) + (command.isEmpty ? (run.Cmd ?? []) : command)
        if argv.isEmpty {
            throw RunnerError(.invalidArgument, "the image has no Entrypoint or Cmd and no command was given", step: "image config")
        }
        let wd = run.WorkingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/"
        let (uid, gid) = try resolveUser(user ?? run.User ?? "", layers: layers, default: defaultUser)
        return ImageProcess(argv: argv, env: run.Env ?? [], workingDirectory: wd, uid: uid, gid: gid)
    }

    /// "name", "uid", "name:group", "uid:gid" (any mix), like Docker.
    static func resolveUser(_ spec: String, layers: [String], default fallback: (UInt32, UInt32)) throws(RunnerError) -> (UInt32, UInt32) {
        if spec.isEmpty { return fallback }
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let passwd = try lookupFile("etc/passwd", in: layers).map(parseColonFile) ?? []
        var uid: UInt32
        var gid: UInt32 = 0
        if let n = UInt32(parts[0]), n != UInt32.max {
            uid = n
            if let entry = passwd.first(where: { $0.count > 3 && UInt32($0[2]) == n }), let g = UInt32(entry[3]) { gid = g }
        } else if let entry = passwd.first(where: { $0.first == parts[0] }), entry.count > 3, let u = UInt32(entry[2]), let g = UInt32(entry[3]) {
            uid = u
            gid = g
        } else {
            throw RunnerError(.notFound, "user \"\(parts[0])\" is not in the image's /etc/passwd", step: "resolve user")
        }
        if parts.count == 2 {
            if let g = UInt32(parts[1]), g != UInt32.max {
                gid = g
            } else {
                let groups = try lookupFile("etc/group", in: layers).map(parseColonFile) ?? []
                guard let entry = groups.first(where: { $0.first == parts[1] }), entry.count > 2, let g = UInt32(entry[2]) else {
                    throw RunnerError(.notFound, "group \"\(parts[1])\" is not in the image's /etc/group", step: "resolve user")
                }
                gid = g
            }
        }
        return (uid, gid)
    }

    static func parseColonFile(_ text: String) -> [[String]] {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
    }

    static let maxAccountFileBytes = 4 << 20

    /// The contents of a file as the overlay of `layers` (top first) shows it, or nil. Every
    /// component is lstat'ed: a symlink anywhere hides the file rather than being followed
    /// (the layers are the runner's own, unpacked and never written after).
    static func lookupFile(_ relative: String, in layers: [String]) throws(RunnerError) -> String? {
        guard let found = OverlayLookup.regularFile(relative, in: layers) else { return nil }
        // An image's account files are small; a huge one is no reason to fill memory.
        if found.size > maxAccountFileBytes {
            throw RunnerError(
                .invalidArgument, "the image's /\(relative) is \(found.size) bytes, more than \(maxAccountFileBytes)",
                step: "resolve user")
        }
        return try FileSystem.read(found.path)
    }
}
