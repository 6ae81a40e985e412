import OCIImage
import RunnerOS
import Testing

@Suite struct ImageReferenceTests {
    @Test(arguments: [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("fnproject/hello", "docker.io/fnproject/hello:latest"),
        ("docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("localhost:5000/a/b:t", "localhost:5000/a/b:t"),
        ("localhost/a", "localhost/a:latest"),
        ("127.0.0.1:5000/fn-test/busybox:1.35", "127.0.0.1:5000/fn-test/busybox:1.35"),
        ("ghcr.io/org/team/app:v1.2.3-rc_1", "ghcr.io/org/team/app:v1.2.3-rc_1"),
        ("a__b/c.d-e", "docker.io/a__b/c.d-e:latest"),
    ])
    func namesAreNormalisedLikeDocker(_ input: String, _ expected: String) throws {
        #expect(try ImageReference.parse(input).description == expected)
    }

    @Test func aDigestPinsTheImageAndATagMayAccompanyIt() throws {
        let hex = String(repeating: "ab", count: 32)
        let byDigest = try ImageReference.parse("host.example/x@sha256:\(hex)")
        #expect(byDigest.tag == nil)
        #expect(byDigest.digest?.hex == hex)
        #expect(byDigest.manifestReference == "sha256:\(hex)")
        let both = try ImageReference.parse("host.example/x:1@sha256:\(hex)")
        #expect(both.tag == "1")
        #expect(both.manifestReference == "sha256:\(hex)")
        #expect(both.description == "host.example/x:1@sha256:\(hex)")
    }

    @Test(arguments: [
        "", "Busybox", "busybox:", ":tag", "a//b", "a/-b", "busy box", "busybox:-x", "x@sha256:123", "x@md5:" + String(repeating: "a", count: 32),
        "host:99999/a", "a/b/", String(repeating: "a", count: 300),
    ])
    func invalidReferencesAreRefusedWithTheReason(_ input: String) {
        let error = #expect(throws: RunnerError.self) { try ImageReference.parse(input) }
        #expect(error?.code == .invalidArgument)
    }
}
