import Runner
import Testing

/// fnrunner's own annotations read from their JSON text, as the HTTP edge (re-encoded) and
/// Fn's LB (as stored) hand them over.
struct AnnotationSettingsTests {
    func definition(_ annotations: [String: String]) -> FunctionDefinition {
        FunctionDefinition(appID: "a", appName: "a", fnID: "f", fnName: "f", image: "i:1", annotations: annotations)
    }

    @Test func aJSONStringIsReadForWhatItHoldsEscapesDecoded() {
        let d = definition([
            FunctionDefinition.networkAnnotation: #""bri\u0064ge""#, FunctionDefinition.zygoteAnnotation: #""pyth\u006fn""#,
            FunctionDefinition.freezeReclaimAnnotation: #""true""#, FunctionDefinition.freezeIdleAnnotation: #""25""#,
        ])
        #expect(d.requestedNetwork == "bridge")
        #expect(d.usesPythonZygote)
        #expect(d.freezeReclaim == true)
        #expect(d.freezeIdleMillis == 25)
    }

    @Test func bareJSONValuesAreReadAsTheyAre() {
        let d = definition([
            FunctionDefinition.networkAnnotation: "none", FunctionDefinition.freezeReclaimAnnotation: "false",
            FunctionDefinition.freezeIdleAnnotation: "1e2", FunctionDefinition.prewarmAnnotation: "0x10",
        ])
        #expect(d.requestedNetwork == "none")
        #expect(d.freezeReclaim == false)
        #expect(d.freezeIdleMillis == 100)
        #expect(d.prewarmCount == 0, "0x10 is no JSON number")
        #expect(definition([:]).requestedNetwork == nil && definition([:]).freezeReclaim == nil)
    }
}
