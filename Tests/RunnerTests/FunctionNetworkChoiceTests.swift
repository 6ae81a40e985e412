import NativeRuntime
import Runner
import RunnerOS
import Sandbox
import Testing

/// Which network a function's container gets: the node's default, its fn's or app's
/// annotation, and `host` only where the node allows it.
struct FunctionNetworkChoiceTests {
    func function(_ annotation: String?) -> FunctionDefinition {
        FunctionDefinition(
            appID: "a", appName: "a", fnID: "f", fnName: "f", image: "i",
            annotations: annotation.map { [FunctionDefinition.networkAnnotation: $0] } ?? [:])
    }

    @Test func withoutAnAnnotationAFunctionGetsTheNodesDefault() throws {
        var c = NativeDriver.Configuration()
        #expect(try c.network(for: function(nil)) == .none)
        c.defaultNetwork = .bridge
        #expect(try c.network(for: function(nil)) == .bridge)
    }

    @Test func theAnnotationPicksNoneOrBridgeAsAJSONString() throws {
        var c = NativeDriver.Configuration()
        c.defaultNetwork = .bridge
        #expect(try c.network(for: function("\"none\"")) == .none)
        #expect(try c.network(for: function("\"bridge\"")) == .bridge)
        #expect(function("\"none\"").slotKey != function("\"bridge\"").slotKey, "containers of different networks are never shared")
    }

    @Test func hostIsRefusedUnlessTheNodeAllowsIt() throws {
        var c = NativeDriver.Configuration()
        c.defaultNetwork = .bridge
        #expect(throws: RunnerError.self) { try c.network(for: function("\"host\"")) }
        c.allowHostNetwork = true
        #expect(try c.network(for: function("\"host\"")) == .host)
    }

    @Test func anUnknownNetworkIsAnErrorNamingTheAnnotation() {
        #expect {
            try NativeDriver.Configuration().network(for: function("\"internet\""))
        } throws: { ($0 as? RunnerError)?.message.contains(FunctionDefinition.networkAnnotation) == true }
    }
}
