import Runner
import RunnerOS
import Testing

@testable import RunnerGRPC

/// Reading Fn's call model as its LB sends it in TryCall.models_call_json.
struct FnCallModelTests {
    /// As a stub runner saw one from Fn's LB for a `/invoke` (fields in Go's order), with
    /// annotations and the CPUs a fn with `cpus: 100m` carries.
    static let fromLB = #"""
        {"id":"01J0CALL","status":"running","image":"fnproject/hello:0.0.2","type":"sync",\#
        "url":"http://127.0.0.1:18081/invoke/01J0FN","method":"POST","timeout":45,"idle_timeout":20,"tmpfs_size":0,\#
        "memory":256,"cpus":"100m","config":{"FN_APP_ID":"01J0APP","FN_MEMORY":"256","FOO":"b\u00e4r \"q\""},\#
        "annotations":{"fnproject.io/fn/invokeEndpoint":"http://127.0.0.1:18081/invoke/01J0FN","x.io/obj":{ "a" : [1, 2.50] }},\#
        "headers":{"Content-Type":["text/plain"],"X-Client":["c1","c2"],"Accept":["*/*"]},\#
        "completed_at":"0001-01-01T00:00:00.000Z","created_at":"2026-12-05T10:00:00.123Z","app_id":"01J0APP",\#
        "app_name":"myapp","trigger_id":"","fn_id":"01J0FN","syslog_url":""}
        """#

    @Test func theLBsModelGivesTheCallItsFunctionRequestAndHeaders() throws {
        let model = try FnCallModel.parse(Self.fromLB)
        #expect(model.id == "01J0CALL")
        #expect(model.type == Call.sync)
        #expect(model.method == "POST")
        #expect(model.url == "http://127.0.0.1:18081/invoke/01J0FN")
        let f = model.function
        #expect((f.appID, f.appName, f.fnID, f.fnName) == ("01J0APP", "myapp", "01J0FN", "01J0FN"))
        #expect(f.image == "fnproject/hello:0.0.2")
        #expect(f.format == "http-stream")
        #expect((f.memoryMB, f.cpuMillicores) == (256, 100))
        #expect((f.timeoutSeconds, f.idleTimeoutSeconds) == (45, 20))
        #expect(f.fnConfig["FOO"] == "bär \"q\"")
        #expect(f.annotations["x.io/obj"] == #"{"a":[1,2.50]}"#)
        #expect(f.annotations["fnproject.io/fn/invokeEndpoint"] == #""http://127.0.0.1:18081/invoke/01J0FN""#)
        #expect(f.syslogURL == nil)
        // Sorted by name, values in their order: the request the function gets is the same
        // whatever order the LB's map gave.
        #expect(model.headers.map { "\($0.0)=\($0.1)" } == ["Accept=*/*", "Content-Type=text/plain", "X-Client=c1", "X-Client=c2"])
        #expect(model.contentType == "text/plain")
    }

    /// Fn's LB passes annotations on as the user stored them, so `2.0` arrives as `2.0`, not
    /// re-encoded as `2` as the HTTP edge has them.
    @Test(arguments: [("2", 2), ("2.0", 2), ("2e0", 2), (#""2""#, 2), ("2.5", nil), (#""x""#, nil), ("1e300", nil), ("[2]", nil)] as [(String, Int?)])
    func wholeNumberAnnotationsAreReadHoweverTheirNumberIsWritten(_ text: String, _ expected: Int?) throws {
        let model = try FnCallModel.parse(#"{"image":"i:1","annotations":{"fnrunner.io/freeze-idle-msecs":\#(text)}}"#)
        #expect(model.function.freezeIdleMillis == expected)
    }

    @Test func missingFieldsTakeFnsDefaults() throws {
        let model = try FnCallModel.parse(#"{"image":"i:1"}"#)
        #expect(model.type == Call.sync)
        #expect(model.method == "POST")
        #expect(model.function.memoryMB == 128)
        #expect((model.function.timeoutSeconds, model.function.idleTimeoutSeconds) == (30, 30))
        #expect(model.function.cpuMillicores == 0)
        #expect(model.headers.isEmpty)
        let nulls = try FnCallModel.parse(#"{"image":"i:1","memory":null,"timeout":null,"idle_timeout":null,"cpus":null}"#)
        #expect(nulls.function == model.function)
    }

    @Test(arguments: [(#""100m""#, 100), (#""0.5""#, 500), ("250", 250), (#""""#, 0), ("null", 0), (#""1024""#, 1_024_000)] as [(String, UInt64)])
    func cpusAreReadAsMillicoresFromTextOrNumber(_ cpus: String, _ millicores: UInt64) throws {
        #expect(try FnCallModel.parse(#"{"image":"i:1","cpus":\#(cpus)}"#).function.cpuMillicores == millicores)
    }

    @Test(arguments: [#""lots""#, "-5", #""1e30""#, #""inf""#, #""-0.5""#, "1024001", #""2000000m""#, "true", "2.5e300"])
    func cpusThatAreNoSettingOrOutOfRangeAreRefused(_ cpus: String) {
        let refusal = RunnerError(
            .invalidArgument,
            "models_call_json has cpus \(cpus); it must be millicores (\"100m\"), CPUs (\"0.1\") or a number of millicores up to 1024000",
            step: "read TryCall")
        #expect(throws: refusal) { try FnCallModel.parse(#"{"image":"i:1","cpus":\#(cpus)}"#) }
    }

    /// The agent turns these into nanoseconds and bytes: out of range they would overflow, so
    /// a model with them is refused whole, naming the field.
    @Test(arguments: [
        ("timeout", "0", "1 and 3600"), ("timeout", "1e16", "1 and 3600"), ("timeout", "-30", "1 and 3600"),
        ("idle_timeout", "100000000000", "1 and 3600"), ("idle_timeout", "-1", "1 and 3600"),
        ("memory", "-128", "0 and 16777216"), ("memory", "18446744073709551615", "0 and 16777216"),
    ])
    func limitsOutOfRangeAreRefusedNamingTheField(_ key: String, _ value: String, _ range: String) {
        let refusal = RunnerError(
            .invalidArgument, "models_call_json has \(key) \(value); it must be between \(range)", step: "read TryCall")
        #expect(throws: refusal) { try FnCallModel.parse(#"{"image":"i:1","\#(key)":\#(value)}"#) }
    }

    @Test func limitsAtTheEdgesOfTheirRangesAreTaken() throws {
        let f = try FnCallModel.parse(#"{"image":"i:1","timeout":3600,"idle_timeout":1,"memory":0,"cpus":"1024000m"}"#).function
        #expect((f.timeoutSeconds, f.idleTimeoutSeconds, f.memoryMB, f.cpuMillicores) == (3600, 1, 0, 1_024_000))
    }

    @Test(arguments: [
        ("{", "models_call_json is not JSON: expected a member name at byte 1"),
        (#"["image"]"#, "models_call_json is not a JSON object"),
        (#"{"image":""}"#, "models_call_json has no image"),
        (#"{"image":7}"#, "models_call_json has no image"),
        (#"{"image":"i:1","id":"01ABC\r\nX-Injected: yes"}"#, "models_call_json has an id with a control character"),
    ])
    func aBadModelIsRefusedNamingWhatIsWrong(_ json: String, _ message: String) {
        #expect(throws: RunnerError(.invalidArgument, message, step: "read TryCall")) { try FnCallModel.parse(json) }
    }
}
