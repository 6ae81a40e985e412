import RunnerOS

/// The /etc/resolv.conf and /etc/hosts a function on the bridge sees, laid read-only over the
/// image's own; the rest of the image stays untouched.
enum NameFiles {
    /// The node's resolv.conf as a function can use it: a loopback name server (such as
    /// systemd-resolved's 127.0.0.53) is unreachable from a container, so it is replaced by
    /// the upstream servers `upstreamSource` lists, as Docker does. Search and options stay.
    static func resolvConf(from source: String, upstreamSource: String) -> (text: String, servers: [String]) {
        let text = (try? FileSystem.read(source)) ?? ""
        var servers: [String] = []
        var rest: [String] = []
        var sawLoopback = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: true).map(\.trimmed) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.first == "nameserver", words.count >= 2 {
                let server = String(words[1])
                if isLoopback(server) { sawLoopback = true } else { servers.append(server) }
            } else if line.hasPrefix("search ") || line.hasPrefix("domain ") || line.hasPrefix("options ") {
                rest.append(line)
            }
        }
        if servers.isEmpty, sawLoopback, upstreamSource != source {
            servers = resolvConf(from: upstreamSource, upstreamSource: upstreamSource).servers
        }
        let body = servers.map { "nameserver \($0)" } + rest
        return ("# Made by fnrunner from \(source)\n" + body.map { $0 + "\n" }.joined(), servers)
    }

    static func isLoopback(_ server: String) -> Bool {
        server.hasPrefix("127.") || server == "::1" || server == "0:0:0:0:0:0:0:1"
    }

    /// A hosts file with loopback and the container's own name on its address.
    static func hosts(address: IPv4Address, hostname: String) -> String {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\(address)\t\(hostname)\n"
    }
}
