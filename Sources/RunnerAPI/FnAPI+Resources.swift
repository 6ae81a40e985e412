import Foundation
import Hummingbird
import NativeRuntime
import Runner
import RunnerOS
import RunnerStore

/// Apps, fns and triggers: create (200 with the object), get, update (config and annotations
/// merged, an empty value deletes), delete (204), list with filters and cursors.
extension FnAPI {
    func addApps(to router: Router<FnRequestContext>) {
        router.post("/v2/apps") { request, _ in
            let input = try await decode(AppInput.self, request)
            if input.id.map({ !$0.isEmpty }) == true { throw Validation.invalid("App ID cannot be supplied on create") }
            let now = Self.now()
            let app = App(
                id: CallID.make(), name: try Validation.name(input.name, of: .app), config: try Validation.config(input.config ?? [:]),
                annotations: try Validation.annotations(input.annotations ?? [:], networks: configuration.functionNetworks), syslogURL: try Validation.syslogURL(input.syslogURL),
                createdAt: now, updatedAt: now)
            try await store.insertApp(app)
            return try Self.json(app)
        }
        router.get("/v2/apps") { request, _ in
            let (cursor, perPage) = try Self.paging(request)
            return try Self.list(try await store.apps(name: Self.query(request, "name"), cursor: cursor, perPage: perPage))
        }
        router.get("/v2/apps/:app_id") { _, context in
            try Self.json(try await store.app(id: try Self.parameter(context, "app_id")))
        }
        router.put("/v2/apps/:app_id") { request, context in
            let id = try Self.parameter(context, "app_id")
            let input = try await decode(AppInput.self, request)
            if let given = input.id, !given.isEmpty, given != id { throw Validation.invalid("App ID in path does not match ID in body") }
            var app = try await store.app(id: id)
            let before = app
            if let name = input.name, !name.isEmpty, name != app.name {
                throw RunnerError(.conflict, "Could not update - name is immutable", step: "update app")
            }
            app.config = try Validation.config(Validation.merge(app.config, input.config))
            app.annotations = try Validation.annotations(
                Validation.merge(app.annotations, input.annotations), networks: configuration.functionNetworks)
            if let s = try Validation.syslogURL(input.syslogURL) { app.syslogURL = s.isEmpty ? nil : s }
            // As Fn: only a change moves updated_at (and is written).
            if app != before {
                app.updatedAt = Self.now()
                try await store.updateApp(app)
                try await prewarmFns(of: app)
            }
            return try Self.json(app)
        }
        router.delete("/v2/apps/:app_id") { _, context in
            let id = try Self.parameter(context, "app_id")
            let fns = try await allFns(appID: id)
            try await store.deleteApp(id: id)
            for fn in fns { agent.functionDeleted(fnID: fn.id) }
            return Response(status: .noContent)
        }
    }

    func addFns(to router: Router<FnRequestContext>) {
        router.post("/v2/fns") { request, _ in
            // Fn's order of checks, and its messages.
            let input = try await decode(FnInput.self, request)
            if input.id.map({ !$0.isEmpty }) == true { throw Validation.invalid("ID cannot be provided for Fn creation") }
            guard let appID = input.appID, !appID.isEmpty else { throw Validation.invalid("Missing AppID on Fn") }
            let name = try Validation.name(input.name, of: .fn)
            guard let image = input.image, !image.isEmpty else { throw Validation.invalid("Missing image on Fn") }
            let now = Self.now()
            let timeout = try Validation.timeout(Validation.given(input.timeout, else: Validation.defaultTimeout))
            let idle = try Validation.idleTimeout(Validation.given(input.idleTimeout, else: Validation.defaultIdleTimeout))
            let memory = try Validation.memory(Validation.given(input.memory, else: Validation.defaultMemoryMB))
            let fn = Fn(
                id: CallID.make(), appID: appID, name: name, image: image, format: try Validation.format(input.format ?? "http-stream"),
                memory: memory, cpus: try Validation.cpus(input.cpus ?? 0), timeout: timeout, idleTimeout: idle,
                config: try Validation.config(input.config ?? [:]),
                annotations: try Validation.annotations(input.annotations ?? [:], networks: configuration.functionNetworks),
                createdAt: now, updatedAt: now)
            try Self.checkRunnable(fn)
            try await store.insertFn(fn)
            try await prewarm(fn)
            return try Self.json(decorated(fn, for: request))
        }
        router.get("/v2/fns") { request, _ in
            guard let appID = Self.query(request, "app_id") else { throw Validation.invalid("Missing AppID on Fn") }
            let (cursor, perPage) = try Self.paging(request)
            let page = try await store.fns(
                appID: appID, name: Self.query(request, "name"), cursor: cursor, perPage: perPage)
            return try Self.list(Page(items: page.items.map { decorated($0, for: request) }, nextCursor: page.nextCursor))
        }
        router.get("/v2/fns/:fn_id") { request, context in
            try Self.json(decorated(try await store.fn(id: try Self.parameter(context, "fn_id")), for: request))
        }
        router.put("/v2/fns/:fn_id") { request, context in
            let id = try Self.parameter(context, "fn_id")
            let input = try await decode(FnInput.self, request)
            if let given = input.id, !given.isEmpty, given != id { throw Validation.invalid("Fn ID in path does not match that in body") }
            var fn = try await store.fn(id: id)
            let before = fn
            // As Fn: a fn's name and app_id stay what they are (a different value is ignored), and
            // 0 means "no change" for the limits.
            if let image = input.image { fn.image = image.isEmpty ? fn.image : image }
            if let format = input.format { fn.format = try Validation.format(format) }
            fn.memory = try Validation.memory(Validation.given(input.memory, else: fn.memory))
            if let cpus = input.cpus { fn.cpus = try Validation.cpus(cpus) }
            fn.timeout = try Validation.timeout(Validation.given(input.timeout, else: fn.timeout))
            fn.idleTimeout = try Validation.idleTimeout(Validation.given(input.idleTimeout, else: fn.idleTimeout))
            fn.config = try Validation.config(Validation.merge(fn.config, input.config))
            fn.annotations = try Validation.annotations(
                Validation.merge(fn.annotations, input.annotations), networks: configuration.functionNetworks)
            try Self.checkRunnable(fn)
            if fn != before {
                fn.updatedAt = Self.now()
                try await store.updateFn(fn)
                try await prewarm(fn)
            }
            return try Self.json(decorated(fn, for: request))
        }
        router.delete("/v2/fns/:fn_id") { _, context in
            let id = try Self.parameter(context, "fn_id")
            try await store.deleteFn(id: id)
            agent.functionDeleted(fnID: id)
            return Response(status: .noContent)
        }
    }

    /// A fn no container could ever start for is refused at create and update (400).
    static func checkRunnable(_ fn: Fn) throws(RunnerError) {
        try FunctionChecks.image(fn.image)
        try FunctionChecks.limits(memoryMB: fn.memory, cpuMillicores: fn.cpus)
    }

    func addTriggers(to router: Router<FnRequestContext>) {
        router.post("/v2/triggers") { request, _ in
            // Fn's order of checks, and its messages.
            let input = try await decode(TriggerInput.self, request)
            if input.id.map({ !$0.isEmpty }) == true { throw Validation.invalid("ID cannot be provided for Trigger creation") }
            guard let appID = input.appID, !appID.isEmpty else { throw Validation.invalid("Missing App ID on Trigger") }
            let name = try Validation.name(input.name, of: .trigger)
            guard let fnID = input.fnID, !fnID.isEmpty else { throw Validation.invalid("Missing Fn ID on Trigger") }
            guard input.type == "http" else { throw Validation.invalid("Trigger Type Not Supported") }
            let now = Self.now()
            let trigger = Trigger(
                id: CallID.make(), name: name, appID: appID, fnID: fnID,
                source: try Validation.source(input.source), annotations: try Validation.annotations(input.annotations ?? [:]),
                createdAt: now, updatedAt: now)
            try await store.insertTrigger(trigger)
            return try Self.json(try await decorated(trigger, for: request))
        }
        router.get("/v2/triggers") { request, _ in
            guard let appID = Self.query(request, "app_id") else { throw Validation.invalid("Missing App ID on Trigger") }
            let (cursor, perPage) = try Self.paging(request)
            let page = try await store.triggers(
                appID: appID, fnID: Self.query(request, "fn_id"), name: Self.query(request, "name"), cursor: cursor, perPage: perPage)
            var items: [Trigger] = []
            for t in page.items { items.append(try await decorated(t, for: request)) }
            return try Self.list(Page(items: items, nextCursor: page.nextCursor))
        }
        router.get("/v2/triggers/:trigger_id") { request, context in
            try Self.json(try await decorated(try await store.trigger(id: try Self.parameter(context, "trigger_id")), for: request))
        }
        router.put("/v2/triggers/:trigger_id") { request, context in
            let id = try Self.parameter(context, "trigger_id")
            let input = try await decode(TriggerInput.self, request)
            if let given = input.id, !given.isEmpty, given != id { throw Validation.invalid("ID in path does not match ID in body") }
            var t = try await store.trigger(id: id)
            let before = t
            if let appID = input.appID, appID != t.appID { throw Validation.invalid("a trigger's app_id cannot be changed") }
            if let fnID = input.fnID, fnID != t.fnID { throw Validation.invalid("a trigger's fn_id cannot be changed") }
            if let name = input.name { t.name = try Validation.name(name, of: .trigger) }
            if let source = input.source { t.source = try Validation.source(source) }
            t.annotations = try Validation.annotations(Validation.merge(t.annotations, input.annotations))
            if t != before {
                t.updatedAt = Self.now()
                try await store.updateTrigger(t)
            }
            return try Self.json(try await decorated(t, for: request))
        }
        router.delete("/v2/triggers/:trigger_id") { _, context in
            try await store.deleteTrigger(id: try Self.parameter(context, "trigger_id"))
            return Response(status: .noContent)
        }
    }

    /// FN_PUBLIC_LB_URL, or the scheme and Host the client used (Fn's request-based annotator).
    func baseURL(_ request: Request) -> String { baseURL(authority: request.head.authority) }

    func baseURL(authority: String?) -> String {
        if let url = configuration.publicURL { return url }
        return "http://\(authority ?? "localhost")"
    }

    /// A fn as clients see it: with its invoke endpoint annotation.
    func decorated(_ fn: Fn, for request: Request) -> Fn {
        var f = fn
        f.annotations["fnproject.io/fn/invokeEndpoint"] = .string("\(baseURL(request))/invoke/\(fn.id)")
        return f
    }

    /// A trigger as clients see it: with its HTTP endpoint annotation.
    func decorated(_ t: Trigger, for request: Request) async throws -> Trigger {
        var out = t
        let app = try await store.app(id: t.appID)
        out.annotations["fnproject.io/trigger/httpEndpoint"] = .string("\(baseURL(request))/t/\(app.name)\(t.source)")
        return out
    }
}
