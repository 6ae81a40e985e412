import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `fnrunner serve --config FILE`: every setting of a node in one file, in the format of
/// systemd's EnvironmentFile (so `/etc/fnrunner/serve.env` is one): `KEY=VALUE` lines, `#`
/// comments, a value optionally in quotes. A key is an `FN_*`/`FNRUNNER_*` variable, an
/// OpenTelemetry one serve honours (`OTEL_EXPORTER_OTLP_ENDPOINT`, ...) or the long
/// name of one of serve's options (`listen=127.0.0.1:8080`, `cgroup-delegated=true`; a
/// repeatable option on several lines). Precedence: flag > environment > file > default; the
/// file is applied before the command line is parsed, by adding only what neither gives.
enum ServeConfigFile {
    enum OptionKind { case value, repeatable, flag }

    /// serve's options a file may set.
    static let options: [String: OptionKind] = [
        "listen": .value, "grpc-listen": .value, "cgroup-delegated": .flag, "state-dir": .value, "cgroup-root": .value,
        "log-level": .value, "log-format": .value, "data-dir": .value, "insecure-registry": .repeatable, "certs-dir": .value,
        "function-network": .value, "function-bridge": .value, "function-subnet": .value, "function-network-allow": .value,
    ]

    /// The variables a node reads (packaging/serve.env lists the same; a test keeps them equal).
    static let variables: Set<String> = [
        "FNRUNNER_SERVE_OPTIONS", "FNRUNNER_LOG_LEVEL", "FNRUNNER_LOG_FORMAT", "FN_PORT", "FN_GRPC_PORT", "FN_NODE_CERT",
        "FN_NODE_CERT_KEY", "FN_NODE_CERT_AUTHORITY", "FN_PUBLIC_LB_URL", "FN_PUBLIC_URL", "FN_MAX_REQUEST_SIZE",
        "FN_CLIENT_IDLE_TIMEOUT_MSECS", "FN_EVENT_LOOPS", "FN_MAX_TOTAL_MEMORY_BYTES", "FN_MAX_TOTAL_CPU_MCPUS", "FN_SANDBOX_POOL_SIZE",
        "FN_ENABLE_NB_RESOURCE_TRACKER", "FN_FREEZE_IDLE_MSECS", "FN_FREEZE_RECLAIM", "FN_HOT_POLL_MSECS",
        "FN_HOT_LAUNCHER_TIMEOUT_MSECS", "FN_HOT_START_TIMEOUT_MSECS", "FN_HOT_PULL_TIMEOUT_MSECS", "FN_MAX_WAIT_MSECS",
        "FN_MAX_RESPONSE_SIZE", "FN_MAX_HDR_RESPONSE_SIZE", "FN_MAX_LOG_SIZE_BYTES", "FN_LOG_FUNCTION_OUTPUT",
        "FN_SHUTDOWN_GRACE_MSECS", "FN_MAX_PIDS", "FN_MAX_OPEN_FILES", "FN_MAX_LOCKED_MEMORY", "FN_MAX_PENDING_SIGNALS",
        "FN_MAX_MESSAGE_QUEUE", "FN_USE_IMAGE_USER", "FN_DOCKER_AUTH", "FN_PYTHON_BYTECODE", "FN_MAX_ASYNC_RUNNING",
        "FN_ASYNC_CHEW_POLL_MSECS", "FN_ASYNC_MAX_ATTEMPTS", "FN_CALL_RETENTION_SECONDS", "FN_CALL_RETENTION_PER_FN", "FN_CALL_RECORDS",
        "FN_FUNCTION_NETWORK", "FN_FUNCTION_BRIDGE", "FN_FUNCTION_SUBNET", "FN_FUNCTION_NETWORK_ALLOW", "FN_FUNCTION_MTU",
        "FN_FUNCTION_RESOLV_CONF", "FN_FUNCTION_NODE_NETNS",
    ]

    struct Entry: Equatable {
        var key: String
        var value: String
        var line: Int
    }

    static func parse(_ text: String, path: String) throws(RunnerError) -> [Entry] {
        var entries: [Entry] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmed
            if line.isEmpty || line.hasPrefix("#") { continue }
            func bad(_ why: String) -> RunnerError {
                RunnerError(.invalidArgument, "\(path) line \(index + 1): \(why)", step: "read --config")
            }
            guard let eq = line.firstIndex(of: "=") else { throw bad("\"\(line)\" is not KEY=VALUE") }
            let key = String(line[..<eq]).trimmed
            var value = String(line[line.index(after: eq)...]).trimmed
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
                value = String(value.dropFirst().dropLast())
            }
            guard variables.contains(key) || ServeTracing.settings.contains(key) || options[key] != nil else {
                let hint = key.hasPrefix("--") ? " (write options without their dashes)" : ""
                throw bad("unknown setting \"\(key)\"\(hint)")
            }
            if options[key] == .flag && !["true", "false"].contains(value) {
                throw bad("\(key) must be true or false, not \"\(value)\"")
            }
            entries.append(Entry(key: key, value: value, line: index + 1))
        }
        return entries
    }

    /// The file named by `--config FILE` (or `--config=FILE`) in `arguments`, applied: variables
    /// the environment lacks are set, options the arguments lack are added. Returns the
    /// arguments to parse.
    static func apply(arguments: [String], environment: [String: String], setVariable: (String, String) -> Void) throws(RunnerError)
        -> [String]
    {
        var path: String?
        for (i, arg) in arguments.enumerated() {
            if arg == "--config", i + 1 < arguments.count { path = arguments[i + 1] }
            if arg.hasPrefix("--config=") { path = String(arg.dropFirst("--config=".count)) }
        }
        guard let path else { return arguments }
        let text: String
        do {
            text = try FileSystem.read(path)
        } catch {
            throw RunnerError(.invalidArgument, "--config \(path): \(error.message)", step: "read --config", errno: error.errno)
        }
        let given = Set(arguments.compactMap { arg -> String? in
            guard arg.hasPrefix("--") else { return nil }
            return String(arg.dropFirst(2).split(separator: "=", maxSplits: 1).first ?? "")
        })
        var out = arguments
        for entry in try parse(text, path: path) {
            if let kind = options[entry.key] {
                guard !given.contains(entry.key) else { continue }
                switch kind {
                case .flag: if entry.value == "true" { out.append("--" + entry.key) }
                case .value, .repeatable: out += ["--" + entry.key, entry.value]
                }
            } else if environment[entry.key]?.isEmpty ?? true {
                setVariable(entry.key, entry.value)
            }
        }
        return out
    }
}
