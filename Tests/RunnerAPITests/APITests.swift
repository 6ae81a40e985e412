import Foundation
import Runner
import RunnerOS
import RunnerStore
import TestSupport
import Testing

/// Fn's v2 API on a live server (stub driver): resources, validation, paging, errors.
struct APITests {
    typealias H = APIHarness

    @Test func rootVersionAndHealthAnswer() async throws {
        try await H.withServer { c, _ in
            #expect(try await c.send("GET", "/").status == 200)
            #expect(try await c.send("GET", "/version").json["version"] as? String != nil)
            #expect(try await c.send("GET", "/health").json["status"] as? String == "ok")
            let missing = try await c.send("GET", "/nope")
            #expect(missing.status == 404)
        }
    }

    @Test func appsAreCreatedReadMergedAndDeleted() async throws {
        try await H.withServer { c, _ in
            let created = try await c.json("POST", "/v2/apps", ["name": "myapp", "config": ["A": "1", "B": "2"]])
            #expect(created.status == 200 && created.json["name"] as? String == "myapp")
            let id = try #require(created.json["id"] as? String)
            #expect(created.json["created_at"] as? String != nil)

            let dup = try await c.json("POST", "/v2/apps", ["name": "myapp"])
            #expect(dup.status == 409 && dup.message == "App already exists")

            let updated = try await c.json("PUT", "/v2/apps/\(id)", ["config": ["A": "", "C": "3"]])
            #expect(updated.status == 200)
            #expect(updated.json["config"] as? [String: String] == ["B": "2", "C": "3"], "an empty value deletes, others merge")

            let mismatch = try await c.json("PUT", "/v2/apps/\(id)", ["id": "other"])
            #expect(mismatch.status == 400)

            let listed = try await c.send("GET", "/v2/apps?name=myapp")
            #expect((listed.json["items"] as? [Any])?.count == 1)

            #expect(try await c.send("DELETE", "/v2/apps/\(id)").status == 204)
            let gone = try await c.send("GET", "/v2/apps/\(id)")
            #expect(gone.status == 404 && gone.message == "App not found")
            #expect(gone.header("Content-Type")?.hasPrefix("application/json") == true)
        }
    }

    @Test func badInputIsAClearFourHundredAndStoresNothing() async throws {
        try await H.withServer { c, store in
            let cases: [([String: Any], String)] = [
                ([:], "Missing Name"),
                (["name": "has space"], "Invalid app name"),
                (["name": String(repeating: "a", count: 256)], "App name must be 255 characters or less"),
                (["name": "ok", "id": "x"], "App ID cannot be supplied on create"),
                (["name": 7], "Invalid JSON"),
                (["name": "ok", "annotations": ["k": ""]], "annotation \"k\" has an empty value"),
            ]
            for (body, message) in cases {
                let r = try await c.json("POST", "/v2/apps", body)
                #expect(r.status == 400, "\(body)")
                #expect(r.message == message, "\(body): \(r.text)")
            }
            let garbage = try await c.send("POST", "/v2/apps", body: Array("{not json".utf8))
            #expect(garbage.status == 400 && garbage.message == "Invalid JSON")
            #expect(try await store.apps(name: nil, cursor: nil, perPage: 10).items.isEmpty)
        }
    }

    @Test func aPrewarmAnnotationIsAWholeNumberOfInstancesOnAFnOrItsAppAndStartsThem() async throws {
        try await H.withServer { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            for bad in ["many", -1, 33, 1.5] as [Any] {
                let r = try await c.json("PUT", "/v2/fns/\(fnID)", ["annotations": ["fnrunner.io/prewarm": bad]])
                #expect(r.status == 400 && r.message?.contains("whole number of instances from 0 to 32") == true, "\(bad): \(r.text)")
                let a = try await c.json("PUT", "/v2/apps/\(appID)", ["annotations": ["fnrunner.io/prewarm": bad]])
                #expect(a.status == 400, "app \(bad): \(a.text)")
            }
            // On the app: every fn of it keeps one instance ahead of demand, before any call.
            #expect(try await c.json("PUT", "/v2/apps/\(appID)", ["annotations": ["fnrunner.io/prewarm": 1]]).status == 200)
            try await pollUntil { (try? await c.send("GET", "/v2/runner/containers"))?.text.contains(fnID) == true }
            // The fn's own annotation wins: "2" (a string holding a number) keeps two.
            #expect(try await c.json("PUT", "/v2/fns/\(fnID)", ["annotations": ["fnrunner.io/prewarm": "2"]]).status == 200)
            try await pollUntil {
                let list = (try? await c.send("GET", "/v2/runner/containers"))?.json["items"] as? [[String: Any]] ?? []
                return list.filter { $0["fn_id"] as? String == fnID }.count == 2
            }
            let hit = try await c.send("POST", "/invoke/\(fnID)", body: Array("x".utf8))
            #expect(hit.status == 200)
            let metrics = try await c.send("GET", "/metrics")
            #expect(metrics.text.contains("fn_prewarm_hits_total 1") && metrics.text.contains("fn_prewarm_misses_total 0"), "\(metrics.text)")
            // Deleting the fn ends its instances.
            #expect(try await c.send("DELETE", "/v2/fns/\(fnID)").status == 204)
            try await pollUntil { (try? await c.send("GET", "/v2/runner/containers"))?.text.contains(fnID) == false }
        }
    }

    @Test func aFreezeAnnotationMustBeWholeMilliseconds() async throws {
        try await H.withServer { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            let bad = try await c.json("PUT", "/v2/fns/\(fnID)", ["annotations": ["fnrunner.io/freeze-idle-msecs": "soon"]])
            #expect(bad.status == 400 && bad.message?.contains("whole number of milliseconds") == true, "\(bad.text)")
            let good = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "frozen", "image": "i", "annotations": ["fnrunner.io/freeze-idle-msecs": 0]])
            #expect(good.status == 200, "\(good.text)")
            let badReclaim = try await c.json("PUT", "/v2/fns/\(fnID)", ["annotations": ["fnrunner.io/freeze-reclaim": "yes"]])
            #expect(badReclaim.status == 400 && badReclaim.message?.contains("true or false") == true, "\(badReclaim.text)")
            let reclaim = try await c.json("PUT", "/v2/fns/\(fnID)", ["annotations": ["fnrunner.io/freeze-reclaim": true]])
            #expect(reclaim.status == 200, "\(reclaim.text)")
        }
    }

    @Test func aZygoteAnnotationMustSayPython() async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            for bad in ["node", 1, true] as [Any] {
                let r = try await c.json("PUT", "/v2/fns/\(fnID)", ["annotations": ["fnrunner.io/zygote": bad]])
                #expect(r.status == 400 && r.message?.contains("must be \"python\"") == true, "\(bad): \(r.text)")
            }
            let good = try await c.json("PUT", "/v2/fns/\(fnID)", ["annotations": ["fnrunner.io/zygote": "python"]])
            #expect(good.status == 200, "\(good.text)")
        }
    }

    @Test func fnLimitsAreCheckedWithFnsMessages() async throws {
        try await H.withServer { c, _ in
            let app = try #require(try await c.json("POST", "/v2/apps", ["name": "a"]).json["id"] as? String)
            let base: [String: Any] = ["app_id": app, "name": "f", "image": "img:1"]
            let cases: [(String, Any, String)] = [
                ("memory", 9000, "memory value is out of range. It should be between 0 and 8192"),
                ("timeout", 301, "timeout value is out of range, must be between 0 and 300"),
                ("idle_timeout", 3601, "idle_timeout value is out of range, must be between 0 and 3600"),
                ("format", "cloudevent", "format must be one of http-stream, default, http, json (not \"cloudevent\")"),
            ]
            for (field, value, message) in cases {
                var body = base
                body[field] = value
                let r = try await c.json("POST", "/v2/fns", body)
                #expect(r.status == 400 && r.message == message, "\(field): \(r.text)")
            }
            let noImage = try await c.json("POST", "/v2/fns", ["app_id": app, "name": "f"])
            #expect(noImage.status == 400 && noImage.message == "Missing image on Fn")
            let noApp = try await c.json("POST", "/v2/fns", ["app_id": "nope", "name": "f", "image": "i"])
            #expect(noApp.status == 404 && noApp.message == "App not found")
        }
    }

    @Test func fnsCarryTheirInvokeEndpointAndGoWithTheirApp() async throws {
        try await H.withServer { c, _ in
            let (appID, fnID) = try await H.appAndFn(c, extra: ["memory": 64, "config": ["X": "1"]])
            let fn = try await c.send("GET", "/v2/fns/\(fnID)")
            #expect(fn.json["memory"] as? Int == 64 && fn.json["format"] as? String == "http-stream")
            #expect((fn.json["annotations"] as? [String: Any])?["fnproject.io/fn/invokeEndpoint"] as? String == "http://fn.test/invoke/\(fnID)")
            let dup = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "hello", "image": "x"])
            #expect(dup.status == 409 && dup.message == "Fn with specified name already exists")
            let updated = try await c.json("PUT", "/v2/fns/\(fnID)", ["timeout": 60, "config": ["X": ""]])
            #expect(updated.json["timeout"] as? Int == 60 && (updated.json["config"] as? [String: String]) == [:], "a fn's config is always there, as in Fn")
            // As Fn: deleting the app deletes its fns (and their triggers) with it.
            #expect(try await c.send("DELETE", "/v2/apps/\(appID)").status == 204)
            #expect(try await c.send("GET", "/v2/fns/\(fnID)").status == 404)
        }
    }

    @Test func listingsPageWithCursors() async throws {
        try await H.withServer { c, _ in
            for i in 0..<5 { _ = try await c.json("POST", "/v2/apps", ["name": "app\(i)"]) }
            var names: [String] = []
            var path = "/v2/apps?per_page=2"
            var pages = 0
            while true {
                let r = try await c.send("GET", path)
                pages += 1
                names += (r.json["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                guard let cursor = r.json["next_cursor"] as? String else { break }
                path = "/v2/apps?per_page=2&cursor=\(cursor)"
            }
            #expect(pages == 3 && names == (0..<5).map { "app\($0)" }, "by name, as Fn lists")
            for odd in ["0", "-3", "abc"] {
                let r = try await c.send("GET", "/v2/apps?per_page=\(odd)")
                #expect(r.status == 200 && (r.json["items"] as? [Any])?.count == 5, "per_page=\(odd) means Fn's default of 30")
            }
            #expect(try await c.send("GET", "/v2/apps?cursor=%%%").status == 400)
        }
    }

    @Test func triggersNeedASourceUniquePerAppAndCarryTheirEndpoint() async throws {
        try await H.withServer { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            let t = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t1", "type": "http", "source": "/hello"])
            #expect(t.status == 200, "\(t.text)")
            #expect((t.json["annotations"] as? [String: Any])?["fnproject.io/trigger/httpEndpoint"] as? String == "http://fn.test/t/myapp/hello")
            let dup = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t2", "type": "http", "source": "/hello"])
            #expect(dup.status == 409)
            let bad = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t3", "type": "http", "source": "nohead"])
            #expect(bad.status == 400 && bad.message == "Missing Trigger Source Prefix '/'")
            let traversal = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t4", "type": "http", "source": "/a/../b"])
            #expect(traversal.status == 400)
            let unlisted = try await c.send("GET", "/v2/triggers")
            #expect(unlisted.status == 400 && unlisted.message == "Missing App ID on Trigger", "listing triggers needs app_id")
            #expect((try await c.send("GET", "/v2/triggers?app_id=\(appID)").json["items"] as? [Any])?.count == 1)
        }
    }
}
