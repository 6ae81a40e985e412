import Instrumentation
import Logging
import OTel
import RunnerOS
import ServiceLifecycle
import Tracing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Traces of calls and API requests, exported over OTLP/HTTP, set up from OpenTelemetry's own
/// variables. Off unless an exporter is asked for, because a node that does not trace should
/// pay nothing: no tracer, no request middleware, no span per call.
enum ServeTracing {
    /// Every OpenTelemetry variable a node honours for traces (serve checks some, swift-otel
    /// reads them all), so `serve --config` can take them and refuse a misspelt one.
    static let settings: Set<String> = Set(
        [
            "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_PROPAGATORS",
            "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_LOG_LEVEL", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_MAX_QUEUE_SIZE",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ]
            + ["HEADERS", "TIMEOUT", "COMPRESSION", "CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"].flatMap {
                ["OTEL_EXPORTER_OTLP_\($0)", "OTEL_EXPORTER_OTLP_TRACES_\($0)"]
            })

    /// The samplers swift-otel has (it stops the process on the others).
    static let samplers = [
        "always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
    ]

    /// Whether the environment asks for traces: OTEL_TRACES_EXPORTER=otlp, or (with it unset)
    /// an OTLP endpoint. OTEL_SDK_DISABLED=true wins. Values this build cannot honour are
    /// errors naming the variable, before anything is started; an empty value is unset.
    static func enabled(_ env: [String: String]) throws(RunnerError) -> Bool {
        func value(_ name: String) -> String? { env[name].flatMap { $0.trimmed.isEmpty ? nil : $0.trimmed } }
        func refuse(_ message: String) -> RunnerError { RunnerError(.invalidArgument, message, step: "tracing") }
        if let disabled = value("OTEL_SDK_DISABLED") {
            guard ["true", "false"].contains(disabled.lowercased()) else {
                throw refuse("OTEL_SDK_DISABLED must be true or false, not \"\(disabled)\"")
            }
            if disabled.lowercased() == "true" { return false }
        }
        // The traces' own setting wins over the shared one, as swift-otel resolves them.
        func resolved(_ suffix: String) -> (name: String, value: String)? {
            for name in ["OTEL_EXPORTER_OTLP_TRACES_" + suffix, "OTEL_EXPORTER_OTLP_" + suffix] {
                if let v = value(name) { return (name, v) }
            }
            return nil
        }
        if let (name, p) = resolved("PROTOCOL"), !["http/protobuf", "http/json"].contains(p) {
            throw refuse("\(name) must be http/protobuf or http/json (this build exports over HTTP only), not \"\(p)\"")
        }
        let endpoint = resolved("ENDPOINT")
        if let (name, url) = endpoint, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw refuse("\(name) must be an http:// or https:// URL, not \"\(url)\"")
        }
        if let list = value("OTEL_PROPAGATORS") {
            for p in list.split(separator: ",").map(\.trimmed) where !["tracecontext", "none"].contains(p) {
                throw refuse("OTEL_PROPAGATORS: this build propagates tracecontext (W3C traceparent) only, or none; not \"\(p)\"")
            }
        }
        if let sampler = value("OTEL_TRACES_SAMPLER"), !samplers.contains(sampler) {
            throw refuse("OTEL_TRACES_SAMPLER must be one of \(samplers.joined(separator: ", ")), not \"\(sampler)\"")
        }
        if let exporter = value("OTEL_TRACES_EXPORTER") {
            switch exporter {
            case "none": return false
            case "otlp": return true
            case "console": throw refuse("OTEL_TRACES_EXPORTER=console is not available in this build (swift-otel has no console exporter); use otlp or none")
            default: throw refuse("OTEL_TRACES_EXPORTER must be otlp or none, not \"\(exporter)\"")
            }
        }
        return endpoint != nil
    }

    /// The tracer (also bootstrapped as the process's, for the API's request spans) and the
    /// service that exports its spans; run that service so that it stops last, flushing them.
    static func start(_ env: [String: String], logger: Logger) throws -> (tracer: any Tracer, service: any Service)? {
        guard try enabled(env) else { return nil }
        // swift-otel takes a variable that is set but empty as set: serve takes it as unset.
        for name in settings where env[name].map({ $0.trimmed.isEmpty }) == true { unsetenv(name) }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "fnrunner"  // OTEL_SERVICE_NAME overrides it
        configuration.logs.enabled = false  // the node's log is its own (stderr, journald)
        configuration.metrics.enabled = false  // metrics are /metrics
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning  // export failures, not every setting read (OTEL_LOG_LEVEL overrides)
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        return (backend.factory, backend.service)
    }
}
