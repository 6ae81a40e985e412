import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ServeCommandTests {
    @Test func aFunctionLinkingItsListenerToAHostSocketGets502AndTheSocketSeesNothing() async throws {
        try await withHelloStreamData("redirect") { env, data in
            let imported = try Subprocess.fnrunner(
                ["import", "--data-dir", data, try await ImageFixtures.helloStreamLayout(), "--name", "fn-test/hello-stream:sh"])
            #expect(await imported.exit() == 0, "\(imported.stderr)")
            // A root-only socket, as a host daemon's API socket would be.
            let dir = "/tmp/fnrunner-secret-serve-\(getpid())"
            try FileSystem.makeDirectories(dir, mode: 0o700)
            defer { try? FileSystem.removeTree(dir) }
            let listener = try Subprocess([
                "/usr/bin/python3", "-c",
                """
                import os, socket, sys
                s = socket.socket(socket.AF_UNIX); s.bind("\(dir)/secret.sock"); os.chmod("\(dir)/secret.sock", 0o600); s.listen(8)
                s.settimeout(8)
                try:
                    c, _ = s.accept(); print("connected"); sys.stdout.flush()
                except socket.timeout:
                    print("nothing")
                """,
            ])
            try await TestSupport.waitUntil(timeoutMillis: helperStartMillis) { FileSystem.exists(dir + "/secret.sock") }
            // What a crashed earlier version left in its host iofs directory goes at startup.
            let leftover = env.stateDirectory + "/iofs/old-container"
            try FileSystem.makeDirectories(leftover)
            try FileSystem.create(leftover + "/written-by-a-function", contents: "x")
            let port = try freePort()
            let (server, c) = try await startServer(env, data: data, port: port)
            #expect(!FileSystem.exists(env.stateDirectory + "/iofs"))
            let a = try await c.json("POST", "/v2/apps", ["name": "redirect"])
            let appID = try #require(a.json["id"] as? String)
            let f = try await c.json(
                "POST", "/v2/fns",
                [
                    "app_id": appID, "name": "hostile", "image": "fn-test/hello-stream:sh",
                    "config": [
                        "SCRIPT": "ln -s \(dir)/secret.sock /tmp/iofs/phony; ln -s phony /tmp/iofs/lsnr.sock; exec sleep 100000"
                    ],
                ])
            let fnID = try #require(f.json["id"] as? String, "\(f.text)")
            let r = try await c.send("POST", "/invoke/\(fnID)", body: Array("secret please".utf8))
            #expect(r.status == 502, "\(r.status) \(r.text)")
            // Fn's words to the caller; the reason is in the node's log.
            #expect(r.message?.hasPrefix("Container failed to initialize") == true, "\(r.text)")
            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
            #expect(server.stderr.contains("links to phony, which is a second link"), "\(server.stderr)")
            #expect(await listener.exit() == 0)
            #expect(listener.stdout.contains("nothing"), "the host socket was reached: \(listener.stdout)")
        }
    }
}
