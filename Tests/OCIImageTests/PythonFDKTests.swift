import OCIImage
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real Python FDK from PyPI, in an image built offline, started from the image store on the
/// native runtime and called over its http-stream socket, as the agent will call it.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct PythonFDKTests {
    @Test func theRealPythonFDKAnswersHelloWorldGatewayStatusesAndErrors() async throws {
        let layout = try await FDKImage.layout()
        try await withSandbox("fdk") { sandbox, env in
            let store = try ImageStore(dataDirectory: env.stateDirectory + "-images")
            defer { try? FileSystem.removeTree(env.stateDirectory + "-images") }

            func call(_ tag: String, body: String, headers: [String] = []) async throws -> String {
                let record = try store.importLayout(layout, as: "fn-test/pyfdk:\(tag)")
                let layers = try store.rootfsLayers(record)
                let process = try ImageProcess.make(config: try store.config(of: record), layers: layers)
                let iofs = env.stateDirectory + "-iofs-\(tag)"
                try FileSystem.makeDirectories(iofs)
                defer { try? FileSystem.removeTree(iofs) }
                chown(iofs, process.uid, process.gid)
                var spec = ContainerSpec(layers: layers, argv: process.argv)
                spec.env = process.env + [
                    "FN_FORMAT=http-stream", "FN_LISTENER=unix:/tmp/iofs/lsnr.sock", "FN_APP_ID=app1", "FN_FN_ID=fn1",
                    "FN_APP_NAME=myapp", "FN_FN_NAME=myfn", "FN_MEMORY=128", "FN_TYPE=sync",
                ]
                spec.workingDirectory = process.workingDirectory
                spec.uid = process.uid
                spec.gid = process.gid
                spec.limits.memoryBytes = 128 << 20
                spec.bindMounts = [.init(source: iofs, target: "/tmp/iofs")]
                let container = try sandbox.start(spec)  // closed below, or by the sandbox's shutdown on failure
                try? await waitUntil { FileSystem.exists(iofs + "/lsnr.sock") || container.exit != nil }
                #expect(container.exit == nil, "the FDK exited: \(String(describing: container.exit))")
                let h = headers.map { "-H '\($0)'" }.joined(separator: " ")
                let out = try await Shell.output("curl -s -i --max-time 10 --unix-socket \(iofs)/lsnr.sock -H 'Fn-Call-Id: 01TEST' \(h) -d '\(body)' http://localhost/call")
                try await container.close()
                return out
            }

            let hello = try await call("pyfdk", body: "World")
            #expect(hello.hasPrefix("HTTP/1.1 200"), "\(hello)")
            #expect(hello.hasSuffix("Hello World"), "\(hello)")
            #expect(hello.lowercased().contains("fn-fdk-version: fdk-python/"))

            let teapot = try await call("pyfdk-teapot", body: "", headers: ["Fn-Intent: httprequest"])
            #expect(teapot.hasPrefix("HTTP/1.1 200"), "\(teapot)")
            #expect(teapot.lowercased().contains("fn-http-status: 418"), "\(teapot)")

            let boom = try await call("pyfdk-boom", body: "")
            #expect(boom.hasPrefix("HTTP/1.1 502"), "\(boom)")
            #expect(boom.hasSuffix("boom from func"), "\(boom)")

            let introspect = try await call("pyfdk-introspect", body: "x")
            #expect(introspect.contains("\"uid\": 1000"), "runs as the default 1000:1000: \(introspect)")
            #expect(introspect.contains("\"FN_FN_ID\": \"fn1\""))
        }
    }
}
