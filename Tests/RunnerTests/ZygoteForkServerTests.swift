import Foundation
import RunnerOS
import Testing

@testable import NativeRuntime

/// Which entrypoints can be a zygote template: a Python script whose `#!` line names a python,
/// read from the image's layers without following links.
struct ZygoteForkServerTests {
    /// A layer directory holding `files` (path → contents), removed after `body`.
    func withLayer(_ files: [String: String], links: [String: String] = [:], _ body: ([String]) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zygote-argv-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (path, contents) in files {
            let full = dir + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try contents.write(toFile: full, atomically: true, encoding: .utf8)
        }
        for (path, target) in links {
            let full = dir + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: full, withDestinationPath: target)
        }
        try body([dir])
    }

    @Test func theFDKsConsoleScriptRunsUnderItsOwnInterpreterWithTheForkServer() throws {
        try withLayer(["/python/bin/fdk": "#!/usr/bin/python3\nfrom fdk.scripts.fdk import main\n"]) { layers in
            let argv = try ZygoteForkServer.argv(for: ["/python/bin/fdk", "/function/func.py", "handler"], layers: layers)
            #expect(argv == ["/usr/bin/python3", "-c", ZygoteForkServer.source, "/python/bin/fdk", "/function/func.py", "handler"])
        }
        try withLayer(["/bin/fdk": "#!/usr/local/bin/python3.11 -s\n"]) { layers in
            let argv = try ZygoteForkServer.argv(for: ["/bin/fdk", "f.py"], layers: layers)
            #expect(Array(argv.prefix(3)) == ["/usr/local/bin/python3.11", "-s", "-c"], "the #! line's one argument is kept")
        }
    }

    @Test(arguments: [
        (["func.py"], "is not an absolute path"),
        (["/missing"], "is not a regular file in the image"),
        (["/bin/binary"], "has no #! line"),
        (["/bin/shell"], "is not run by python"),
        (["/bin/relative"], "is not run by python"),
        (["/bin/words"], "is not run by python"),
        (["/bin/link"], "is not a regular file in the image"),
    ])
    func anEntrypointThatIsNotAPythonScriptIsRefusedSayingWhy(_ argv: [String], _ why: String) throws {
        let files = [
            "/bin/binary": "\u{7F}ELF....", "/bin/shell": "#!/bin/sh\necho\n", "/bin/relative": "#!python3\n",
            "/bin/words": "#!/usr/bin/python3 -s -E\n", "/python/bin/fdk": "#!/usr/bin/python3\n",
        ]
        try withLayer(files, links: ["/bin/link": "/python/bin/fdk"]) { layers in
            let error = #expect(throws: RunnerError.self) { try ZygoteForkServer.argv(for: argv, layers: layers) }
            #expect(error?.message.contains(why) == true, "\(argv): \(String(describing: error))")
            #expect(error?.message.contains("fnrunner.io/zygote") == true)
        }
    }
}
