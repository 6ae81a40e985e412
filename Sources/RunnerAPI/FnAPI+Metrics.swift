import HTTPTypes
import Hummingbird
import Runner

/// `GET /metrics`: the agent's counters in Prometheus' text format, and the containers `fnrunner ps` lists.
extension FnAPI {
    func addMetrics(to router: Router<FnRequestContext>) {
        // What `fnrunner ps` lists: the hot containers of this node.
        router.get("/v2/runner/containers") { _, _ in try Self.json(["items": agent.containers]) }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: agent.prometheusText())))
        }
    }
}
