import Foundation
import Runner
import RunnerOS
import RunnerStore
import Testing

/// The v2 API answers as Fn's own server (v0.3.753) does, message for message: what Fn's CLI
/// and other clients rely on.
struct FnConformanceTests {
    typealias H = APIHarness

    @Test func unknownPathsAre404AndKnownPathsWithAnotherMethod405WithFnsMessages() async throws {
        try await H.withServer { c, _ in
            for (method, path, status, message) in [
                ("GET", "/nope", 404, "Path not found: GET /nope"),
                ("GET", "/v2/nope", 404, "Path not found: GET /v2/nope"),
                ("DELETE", "/v2/apps", 405, "Method not allowed: DELETE /v2/apps"),
                ("PATCH", "/v2/fns/x", 405, "Method not allowed: PATCH /v2/fns/x"),
                ("POST", "/v2/triggers/x", 405, "Method not allowed: POST /v2/triggers/x"),
            ] {
                let r = try await c.send(method, path)
                #expect(r.status == status && r.message == message, "\(method) \(path): \(r.status) \(r.text)")
                #expect(r.header("Content-Type")?.hasPrefix("application/json") == true)
            }
        }
    }

    @Test func unknownFieldsAreIgnoredAndZeroLimitsTakeFnsDefaults() async throws {
        try await H.withServer { c, _ in
            let app = try await c.json("POST", "/v2/apps", ["name": "lenient", "colour": "blue", "shape": "GENERIC_X86"])
            #expect(app.status == 200, "\(app.text)")
            let appID = try #require(app.json["id"] as? String)
            let fn = try await c.json(
                "POST", "/v2/fns", ["app_id": appID, "name": "zero", "image": "img:1", "memory": 0, "timeout": 0, "idle_timeout": 0, "extra": [1]])
            #expect(fn.status == 200, "\(fn.text)")
            #expect(fn.json["memory"] as? Int == 128 && fn.json["timeout"] as? Int == 30 && fn.json["idle_timeout"] as? Int == 30)
            let fnID = try #require(fn.json["id"] as? String)
            // On update, 0 changes nothing; a different name or app_id is ignored, as in Fn.
            let updated = try await c.json("PUT", "/v2/fns/\(fnID)", ["memory": 0, "timeout": 45, "name": "other", "app_id": "elsewhere"])
            #expect(updated.status == 200, "\(updated.text)")
            #expect(updated.json["memory"] as? Int == 128 && updated.json["timeout"] as? Int == 45)
            #expect(updated.json["name"] as? String == "zero" && updated.json["app_id"] as? String == appID)
        }
    }

    @Test func renamingAnAppIs409AndIDsThatDoNotMatchAre400() async throws {
        try await H.withServer { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            let rename = try await c.json("PUT", "/v2/apps/\(appID)", ["name": "renamed"])
            #expect(rename.status == 409 && rename.message == "Could not update - name is immutable", "\(rename.text)")
            let same = try await c.json("PUT", "/v2/apps/\(appID)", ["name": "myapp", "config": ["A": "1"]])
            #expect(same.status == 200, "the same name is no rename")
            let appMismatch = try await c.json("PUT", "/v2/apps/\(appID)", ["id": "other"])
            #expect(appMismatch.status == 400 && appMismatch.message == "App ID in path does not match ID in body")
            let fnMismatch = try await c.json("PUT", "/v2/fns/\(fnID)", ["id": "other"])
            #expect(fnMismatch.status == 400 && fnMismatch.message == "Fn ID in path does not match that in body")
        }
    }

    @Test func namesAndRequiredFieldsAreCheckedInFnsOrderWithFnsMessages() async throws {
        try await H.withServer { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            let fnCases: [([String: Any], String)] = [
                (["app_id": appID, "name": "x", "image": "i", "id": "given"], "ID cannot be provided for Fn creation"),
                (["name": "x", "image": "i"], "Missing AppID on Fn"),
                (["app_id": appID, "image": "i"], "Missing Fn name"),
                (["app_id": appID, "name": "has space", "image": "i"], "name must be a valid string"),
                (["app_id": appID, "name": "slash/y", "image": "i"], "name must be a valid string"),
                (["app_id": appID, "name": String(repeating: "f", count: 256), "image": "i"], "Fn name must be 255 characters or less"),
                (["app_id": appID, "name": "x"], "Missing image on Fn"),
            ]
            for (body, message) in fnCases {
                let r = try await c.json("POST", "/v2/fns", body)
                #expect(r.status == 400 && r.message == message, "\(body): \(r.text)")
            }
            // Fn's fn names take what a URL path carries unescaped.
            #expect(try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "v1.2~a$b&c+d:e=f@g", "image": "img:1"]).status == 200)
            #expect(try await c.json("POST", "/v2/apps", ["name": "Ünïcode_app-1"]).status == 200, "app names are Unicode letters and numbers")
            let unlisted = try await c.send("GET", "/v2/fns")
            #expect(unlisted.status == 400 && unlisted.message == "Missing AppID on Fn")

            let other = try #require(try await c.json("POST", "/v2/apps", ["name": "other"]).json["id"] as? String)
            let base: [String: Any] = ["app_id": appID, "fn_id": fnID, "name": "t", "type": "http", "source": "/s"]
            let triggerCases: [([String: Any], Int, String)] = [
                (["id": "given"], 400, "ID cannot be provided for Trigger creation"),
                (["app_id": ""], 400, "Missing App ID on Trigger"),
                (["name": ""], 400, "Missing name on Trigger"),
                (["name": "bad name"], 400, "Invalid name for Trigger"),
                (["fn_id": ""], 400, "Missing Fn ID on Trigger"),
                (["type": "cloudevent"], 400, "Trigger Type Not Supported"),
                (["type": ""], 400, "Trigger Type Not Supported"),
                (["source": ""], 400, "Missing Trigger Source"),
                (["source": "s"], 400, "Missing Trigger Source Prefix '/'"),
                (["app_id": other], 400, "Invalid Fn ID - not owned by specified app"),
                (["fn_id": "01NOPE"], 404, "Fn not found"),
            ]
            for (change, status, message) in triggerCases {
                var body = base
                body.merge(change) { $1 }
                let r = try await c.json("POST", "/v2/triggers", body)
                #expect(r.status == status && r.message == message, "\(change): \(r.text)")
            }
            #expect(try await c.json("POST", "/v2/triggers", base).status == 200)
            var sameSource = base
            sameSource["name"] = "t2"
            let dupSource = try await c.json("POST", "/v2/triggers", sameSource)
            #expect(dupSource.status == 409 && dupSource.message == "Trigger with the same type and source exists on this app")
            var sameName = base
            sameName["source"] = "/other"
            let dupName = try await c.json("POST", "/v2/triggers", sameName)
            #expect(dupName.status == 409 && dupName.message == "Trigger already exists")
        }
    }

    @Test func listsGoByNameWithAnOpaqueCursorAndFnsDefaultsForPerPage() async throws {
        try await H.withServer { c, _ in
            let app = try #require(try await c.json("POST", "/v2/apps", ["name": "lists"]).json["id"] as? String)
            for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
                #expect(try await c.json("POST", "/v2/fns", ["app_id": app, "name": name, "image": "img:1"]).status == 200)
            }
            var names: [String] = []
            var path = "/v2/fns?app_id=\(app)&per_page=2"
            while true {
                let r = try await c.send("GET", path)
                names += (r.json["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                guard let cursor = r.json["next_cursor"] as? String else { break }
                #expect(!cursor.contains("=") && !cursor.contains("/") && !cursor.contains("+"), "URL-safe: \(cursor)")
                path = "/v2/fns?app_id=\(app)&per_page=2&cursor=\(cursor)"
            }
            #expect(names == ["alpha", "bravo", "charlie", "delta", "echo"])
            let all = try await c.send("GET", "/v2/fns?app_id=\(app)&per_page=1000")
            #expect((all.json["items"] as? [Any])?.count == 5 && all.json["next_cursor"] == nil)
        }
    }

    @Test func functionsSeeHeaderNamesInGosCanonicalFormThroughInvokeAndTriggers() async throws {
        try await H.withServer { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            _ = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t", "type": "http", "source": "/hdr"])
            let invoked = try await c.send("POST", "/invoke/\(fnID)", body: Array("rawheaders".utf8), headers: [("x-foo-BAR", "1")])
            #expect(invoked.text.split(separator: "\n").contains("X-Foo-Bar=1"), "\(invoked.text)")
            let triggered = try await c.send("POST", "/t/myapp/hdr", body: Array("rawheaders".utf8), headers: [("x-foo-BAR", "1")])
            let lines = triggered.text.split(separator: "\n").map(String.init)
            #expect(lines.contains("Fn-Http-H-X-Foo-Bar=1"), "\(triggered.text)")
            #expect(lines.contains("Fn-Http-Method=POST") && lines.contains("Fn-Intent=httprequest"), "\(triggered.text)")
            #expect(!lines.contains { $0.lowercased() == $0 && $0.hasPrefix("fn-") }, "no lowercased names: \(triggered.text)")
        }
    }

    @Test func emptyMapsAreLeftOutANoOpUpdateKeepsUpdatedAtAndErrorsEndWithANewline() async throws {
        try await H.withServer { c, _ in
            let app = try await c.json("POST", "/v2/apps", ["name": "plain"])
            #expect(app.json["config"] == nil && app.json["annotations"] == nil, "\(app.text)")
            let appID = try #require(app.json["id"] as? String)
            let updatedAt = try #require(app.json["updated_at"] as? String)
            try await Task.sleep(for: .milliseconds(5))
            let same = try await c.json("PUT", "/v2/apps/\(appID)", ["config": [String: String]()])
            #expect(same.status == 200 && same.json["updated_at"] as? String == updatedAt, "\(same.text)")
            #expect(try await c.send("GET", "/v2/apps/\(appID)").json["updated_at"] as? String == updatedAt)
            let changed = try await c.json("PUT", "/v2/apps/\(appID)", ["config": ["K": "v"]])
            #expect(changed.json["updated_at"] as? String != updatedAt && (changed.json["config"] as? [String: String]) == ["K": "v"])

            let fn = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "f", "image": "fn-test/echo:1"])
            #expect((fn.json["config"] as? [String: String]) == [:] && fn.json["annotations"] != nil, "a fn's config always: \(fn.text)")
            let fnID = try #require(fn.json["id"] as? String)
            let fnSame = try await c.json("PUT", "/v2/fns/\(fnID)", ["memory": 0, "image": ""])
            #expect(fnSame.json["updated_at"] as? String == fn.json["updated_at"] as? String, "\(fnSame.text)")

            let missing = try await c.send("GET", "/v2/apps/nope")
            #expect(missing.status == 404 && missing.text.hasSuffix("}\n"), "\(missing.text)")
        }
    }

    @Test func stdioFormatsAnswerWithTheFunctionsOwnStatusAndHeadersHTTPStreamThroughFnHTTPStatus() async throws {
        try await H.withServer { c, _ in
            let (appID, jsonID) = try await H.appAndFn(c, fn: "json", extra: ["format": "json"])
            _ = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": jsonID, "name": "j", "type": "http", "source": "/j"])
            for path in ["/invoke/\(jsonID)", "/t/myapp/j"] {
                let created = try await c.send("POST", path, body: Array("status:201".utf8))
                #expect(created.status == 201, "\(path): \(created.status) \(created.text)")
                // The function's headers as they are, named as Go names them; Fn-Http-* mean nothing here.
                let stub = try await c.send("POST", path, body: Array("stub".utf8))
                #expect(stub.status == 200 && stub.headers.contains { $0.0 == "X-Raw" && $0.1 == "raw" }, "\(path): \(stub.headers)")
                #expect(stub.header("Fn-Http-Status") == "201" && stub.header("X-Stub") == nil, "\(path): \(stub.headers)")
                let odd = try await c.send("POST", path, body: Array("status:150".utf8))
                #expect(odd.status == 502 && odd.message == "invalid function response", "\(path): \(odd.status) \(odd.text)")
            }
            // A trigger passes a stdio function the client's headers as they are, not Fn-Http-H-*.
            let headers = try await c.send("POST", "/t/myapp/j", body: Array("rawheaders".utf8), headers: [("x-custom", "v")])
            let lines = headers.text.split(separator: "\n").map(String.init)
            #expect(lines.contains("X-Custom=v") && !lines.contains { $0.hasPrefix("Fn-Http-") || $0.hasPrefix("Fn-Intent") }, "\(lines)")

            // http-stream: a success is 200 on the wire; the user's status rides in Fn-Http-Status.
            let made = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "stream", "image": "fn-test/echo:1"])
            let streamID = try #require(made.json["id"] as? String, "\(made.text)")
            _ = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": streamID, "name": "s", "type": "http", "source": "/s"])
            let stubbed = try await c.send("POST", "/invoke/\(streamID)", body: Array("stub".utf8))
            #expect(stubbed.status == 200 && stubbed.headers.contains { $0.0 == "Fn-Http-Status" }, "\(stubbed.headers)")
            let triggered = try await c.send("POST", "/t/myapp/s", body: Array("stub".utf8))
            #expect(triggered.status == 201 && triggered.headers.contains { $0.0 == "X-Stub" } && triggered.header("X-Raw") == nil)
            let wrong = try await c.send("POST", "/invoke/\(streamID)", body: Array("status:201".utf8))
            #expect(wrong.status == 502 && wrong.message == "invalid function response")
        }
    }

    @Test func anAppsSyslogURLNeedsASchemeDockersSyslogDriverKnowsWithFnsMessage() async throws {
        try await H.withServer { c, _ in
            for bad in ["notaurl", "yo://sup.com:1", "http://logs:514"] {
                let r = try await c.json("POST", "/v2/apps", ["name": "a1", "syslog_url": bad])
                #expect(r.status == 400, "\(bad)")
                #expect(
                    r.message == "invalid syslog url: \"\(bad)\" invalid scheme, only [tcp, udp, unix, unixgram, tcp+tls] are supported",
                    "\(r.text)")
            }
            for (i, good) in ["tcp://logs:514", "UDP://10.0.0.1:514", "unix:///dev/log", "tcp+tls://logs:6514", ""].enumerated() {
                let r = try await c.json("POST", "/v2/apps", ["name": "ok\(i)", "syslog_url": good])
                #expect(r.status == 200, "\(good): \(r.text)")
            }
            let app = try await c.json("POST", "/v2/apps", ["name": "upd"])
            let id = try #require(app.json["id"] as? String)
            let put = try await c.json("PUT", "/v2/apps/\(id)", ["syslog_url": "notaurl"])
            #expect(put.status == 400 && put.message?.hasPrefix("invalid syslog url: \"notaurl\"") == true)
        }
    }

    @Test func withoutAPublicURLEndpointsAndRequestURLsFollowTheRequestsHost() async throws {
        try await H.withServer(publicURL: nil) { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            let trigger = try await c.json(
                "POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t", "type": "http", "source": "/hostly"],
                headers: [("Host", "node7.example:9000")])
            let annotations = trigger.json["annotations"] as? [String: Any]
            #expect(annotations?["fnproject.io/trigger/httpEndpoint"] as? String == "http://node7.example:9000/t/myapp/hostly")
            let fn = try await c.send("GET", "/v2/fns/\(fnID)", headers: [("Host", "api.example")])
            let fnAnnotations = fn.json["annotations"] as? [String: Any]
            #expect(fnAnnotations?["fnproject.io/fn/invokeEndpoint"] as? String == "http://api.example/invoke/\(fnID)")
            let seen = try await c.send("POST", "/t/myapp/hostly", body: Array("rawheaders".utf8), headers: [("Host", "edge.example")])
            #expect(seen.text.split(separator: "\n").contains("Fn-Http-Request-Url=http://edge.example/t/myapp/hostly"), "\(seen.text)")
        }
    }
}
