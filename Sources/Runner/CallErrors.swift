import RunnerOS

/// The error codes of a call, with Fn's messages. The API edge turns them into statuses:
/// serverBusy 503 (+ Retry-After), callTimeout 504, resourceTooBig 400, and the function's
/// failures 502.
extension RunnerError.Code {
    /// No container or resources in time, or the runner is shutting down (Fn: 503).
    public static let serverBusy = RunnerError.Code("server_busy")
    /// The call ran past its timeout, or the function said it timed out (Fn: 504).
    public static let callTimeout = RunnerError.Code("call_timeout")
    /// More memory or CPU than the node has (Fn: 400).
    public static let resourceTooBig = RunnerError.Code("resource_too_big")
    /// The function answered 502 (Fn: 502 "function failed").
    public static let functionFailed = RunnerError.Code("function_failed")
    /// The function's answer could not be read: it crashed, exited or broke the protocol (502).
    public static let functionResponse = RunnerError.Code("function_response")
    /// The function answered with a status other than 200, 502 or 504 (502).
    public static let functionInvalidResponse = RunnerError.Code("function_invalid_response")
    /// The response body passed FN_MAX_RESPONSE_SIZE (502).
    public static let responseTooBig = RunnerError.Code("response_too_big")
    /// The container was killed for its memory limit during the call (502).
    public static let outOfMemory = RunnerError.Code("out_of_memory")
    /// The client went away before the answer (Fn: 444, no body).
    public static let callCancelled = RunnerError.Code("call_cancelled")
    /// The request body passed FN_MAX_REQUEST_SIZE (413).
    public static let requestTooLarge = RunnerError.Code("request_too_large")
}

/// Fn's messages, word for word, so clients that match on them keep working.
public enum CallErrors {
    public static func serverBusy() -> RunnerError { RunnerError(.serverBusy, "Timed out - server too busy", step: "wait for container") }
    public static func shuttingDown() -> RunnerError { RunnerError(.serverBusy, "Timed out - server too busy", step: "shutting down") }
    public static func callTimeout() -> RunnerError { RunnerError(.callTimeout, "Timed out", step: "call function") }
    public static func cancelled(_ step: String) -> RunnerError { RunnerError(.callCancelled, "client cancelled", step: step) }
    public static func resourceTooBig() -> RunnerError {
        RunnerError(.resourceTooBig, "Requested CPU/Memory cannot be allocated", step: "submit")
    }
    public static func functionFailed() -> RunnerError { RunnerError(.functionFailed, "function failed", step: "call function") }
    public static func functionResponse(_ cause: RunnerError) -> RunnerError {
        RunnerError(.functionResponse, "error receiving function response", step: cause.step ?? "call function", errno: cause.errno)
    }
    public static func invalidResponse() -> RunnerError {
        RunnerError(.functionInvalidResponse, "invalid function response", step: "call function")
    }
    public static func responseTooBig() -> RunnerError {
        RunnerError(.responseTooBig, "function response body too large", step: "call function")
    }
    public static func headerTooBig() -> RunnerError {
        RunnerError(.responseTooBig, "function response header too large", step: "call function")
    }
    public static func requestTooLarge(_ step: String) -> RunnerError {
        RunnerError(.requestTooLarge, "Request content too large", step: step)
    }
    public static func outOfMemory(_ memoryMB: UInt64) -> RunnerError {
        RunnerError(
            .outOfMemory, "container out of memory, you may want to raise fn.memory for this function (now \(memoryMB)MB)",
            step: "call function")
    }
}

extension RunnerError.Code {
    /// The container exited or broke before it listened (502).
    public static let containerInit = RunnerError.Code("container_init")
    /// The container did not listen within FN_HOT_START_TIMEOUT_MSECS (504).
    public static let containerInitTimeout = RunnerError.Code("container_init_timeout")
    /// The image could not be pulled within FN_HOT_PULL_TIMEOUT_MSECS (504).
    public static let pullTimeout = RunnerError.Code("pull_timeout")
    /// A cold container exited with a code other than 0 (502).
    public static let containerExit = RunnerError.Code("container_exit")
    /// The registry has no such image, or refused the credentials (Fn passes the registry's
    /// 4xx on: 404 or 401).
    public static let imageNotFound = RunnerError.Code("image_not_found")
    public static let imageUnauthorized = RunnerError.Code("image_unauthorized")
    /// Any other pull failure: the registry unreachable, a broken image (502).
    public static let pullFailed = RunnerError.Code("pull_failed")
    /// The app's syslog_url could not be reached when the container was made (Fn: 500).
    public static let syslogUnavailable = RunnerError.Code("syslog_unavailable")
}

extension CallErrors {
    public static func containerInit() -> RunnerError {
        RunnerError(
            .containerInit, "Container failed to initialize, please ensure you are using the latest fdk and check the logs",
            step: "wait for function")
    }
    public static func containerInitTimeout() -> RunnerError {
        RunnerError(
            .containerInitTimeout,
            "Container initialization timed out, please ensure you are using the latest fdk and check the logs",
            step: "wait for function")
    }
    public static func pullTimeout() -> RunnerError { RunnerError(.pullTimeout, "Image pull timed out", step: "pull image") }
    /// Fn's "Failed to pull image '<image>': <what the registry said>", with the registry's 404
    /// or 401 passed on, else 502.
    public static func pullFailed(_ image: String, _ cause: RunnerError) -> RunnerError {
        let code: RunnerError.Code =
            switch cause.code {
            case .notFound: .imageNotFound
            case .unauthorized: .imageUnauthorized
            default: .pullFailed
            }
        return RunnerError(code, "Failed to pull image '\(image)': \(cause.message)", step: cause.step ?? "pull image", errno: cause.errno)
    }
    public static func syslogUnavailable(_ cause: RunnerError) -> RunnerError {
        RunnerError(.syslogUnavailable, "Syslog Unavailable: \(cause.message)", step: cause.step ?? "connect syslog", errno: cause.errno)
    }
    public static func containerExit(_ code: Int32) -> RunnerError {
        RunnerError(.containerExit, "container exit code \(code)", step: "run container")
    }
    /// A container start whose agent run was cancelled: it ends where it is, with no fallback.
    public static func startCancelled(_ step: String) -> RunnerError {
        RunnerError(.unavailable, "the start was cancelled", step: step)
    }
    public static func unknownFormat(_ format: String) -> RunnerError {
        RunnerError(.invalidArgument, "unknown function format \"\(format)\" (use http-stream, default, http or json)", step: "make call")
    }
}

extension RunnerError {
    /// Fn's status for a call's error: what `/invoke` answers and what a pure runner reports
    /// in CallFinished.errorCode. Nil for errors that are not about a call (the API's own).
    public var callStatus: Int? {
        switch code {
        case .invalidArgument, .resourceTooBig, .imageHasVolume: 400
        case .imageUnauthorized: 401
        case .imageNotFound: 404
        case .requestTooLarge: 413
        case .syslogUnavailable: 500
        case .serverBusy: 503
        case .callTimeout, .containerInitTimeout, .pullTimeout: 504
        case .functionFailed, .functionResponse, .functionInvalidResponse, .responseTooBig, .outOfMemory, .containerInit,
            .containerExit, .unavailable, .pullFailed:
            502
        case .callCancelled: 444
        default: nil
        }
    }

    /// Whether the function caused the error (Fn's "user error": the LB reports it as the
    /// function's failure, not the runner's).
    public var isFunctionError: Bool {
        switch code {
        case .functionFailed, .functionResponse, .functionInvalidResponse, .responseTooBig, .outOfMemory, .containerInit,
            .containerInitTimeout, .containerExit, .callTimeout, .imageNotFound, .imageUnauthorized, .pullFailed, .pullTimeout,
            .syslogUnavailable:
            true
        default: false
        }
    }
}
