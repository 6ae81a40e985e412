import OCIImage
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Layer extraction as root (ownership, whiteout devices, trusted.* xattrs need it).
@Suite(.enabled(if: Host.isRoot, "needs root to restore ownership and create overlay whiteouts"))
struct LayerUnpackerTests {
    func scratch() throws -> String {
        let dir = "/tmp/fnrunner-test-unpack-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectories(dir)
        return dir
    }

    func expectRefused(_ fixture: String, mentioning member: String) async throws {
        let target = try scratch()
        defer { try? FileSystem.removeTree(target) }
        let before = try FileSystem.list(ImageFixtures.hostSentinel)
        let blob = try await ImageFixtures.hostile(fixture)
        let error = #expect(throws: RunnerError.self) {
            _ = try LayerUnpacker().unpack(blob: blob, into: target, mode: .flatten)
        }
        #expect(error?.description.contains(member) == true, "\(String(describing: error))")
        #expect(try FileSystem.list(ImageFixtures.hostSentinel) == before, "the host directory was written to")
        #expect(!FileSystem.exists("/tmp/escaped") && !FileSystem.exists(target + "/../escaped"))
    }

    @Test func dotDotMembersAreRefusedNamingTheMember() async throws {
        try await withSharedGate {
            try await expectRefused("dotdot.tar", mentioning: "../escaped")
            try await expectRefused("dotdot-deep.tar", mentioning: "a/../../escaped")
        }
    }

    @Test func writingThroughASymlinkThatPointsOutsideIsRefused() async throws {
        try await withSharedGate {
            try await expectRefused("symlink-escape.tar", mentioning: "link/pwned")
            try await expectRefused("whiteout-through-symlink.tar", mentioning: "s/.wh.victim")
        }
    }

    @Test func hardLinksToOutsideAreRefused() async throws {
        try await withSharedGate {
            try await expectRefused("hardlink-dotdot.tar", mentioning: "hl")
            try await expectRefused("hardlink-through-symlink.tar", mentioning: "h")
        }
    }

    @Test func aHardLinkToASymlinkIsRefusedAndTheHostFileKeepsItsMode() async throws {
        try await withSharedGate {
            try await expectRefused("hardlink-to-symlink.tar", mentioning: "hard link to a symlink")
            var st = stat()
            #expect(stat(ImageFixtures.hostSentinel + "/file", &st) == 0 && (st.st_mode & 0o7777) == 0o644)
        }
    }

    @Test func trustedXattrsFromAnImageAreDroppedAndOthersKept() async throws {
        try await withSharedGate {
            let target = try scratch()
            defer { try? FileSystem.removeTree(target) }
            _ = try LayerUnpacker().unpack(blob: try await ImageFixtures.hostile("trusted-xattr.tar"), into: target, mode: .overlayLayer)
            let attrs = try await Shell.output("python3 -c 'import os,sys; print(sorted(os.listxattr(sys.argv[1])))' \(target)/d")
            #expect(attrs == "['user.kept']\n", "\(attrs)")
        }
    }

    @Test func absoluteNamesAreContainedInTheTarget() async throws {
        try await withSharedGate {
            let target = try scratch()
            defer { try? FileSystem.removeTree(target) }
            _ = try LayerUnpacker().unpack(blob: try await ImageFixtures.hostile("absolute.tar"), into: target, mode: .flatten)
            #expect(try FileSystem.read(target + "/abs-file") == "contained\n")
            #expect(!FileSystem.exists("/abs-file"))
        }
    }

    @Test func aLayerEndingRightAfterItsLastMemberIsAcceptedLikeGo() async throws {
        try await withSharedGate {
            let target = try scratch()
            defer { try? FileSystem.removeTree(target) }
            let result = try LayerUnpacker().unpack(blob: try await ImageFixtures.hostile("truncated-at-boundary.tar"), into: target, mode: .flatten)
            #expect(try FileSystem.read(target + "/b") == "second file, 25 bytes..\n")
            #expect(result.diffID.description == (try FileSystem.read(try await ImageFixtures.hostile("truncated-at-boundary.diffid"))))
        }
    }

    @Test func aLayerCutInsideAMemberIsRejected() async throws {
        try await withSharedGate {
            let target = try scratch()
            defer { try? FileSystem.removeTree(target) }
            let blob = try await ImageFixtures.hostile("truncated-mid-member.tar")
            #expect(throws: RunnerError.self) {
                _ = try LayerUnpacker().unpack(blob: blob, into: target, mode: .flatten)
            }
        }
    }

    @Test func aCorruptLayerNeverBecomesAStoredLayer() async throws {
        try await withSharedGate {
            let dir = try scratch()
            defer { try? FileSystem.removeTree(dir) }
            let layers = try LayerStore(root: dir)
            let expected = try Digest.parse(try FileSystem.read(try await ImageFixtures.hostile("corrupt.diffid")))
            let blob = try await ImageFixtures.hostile("corrupt.tar.gz")
            #expect(throws: RunnerError.self) { try layers.ensure(diffID: expected, blob: blob) }
            #expect(!layers.has(expected))
            #expect(layers.all().isEmpty)
            #expect(try FileSystem.list(dir + "/tmp").isEmpty)
        }
    }

    @Test func overlayLayersKeepWhiteoutsInTheKernelsFormat() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            let store = try ImageStore(dataDirectory: try scratch())
            defer { try? FileSystem.removeTree(store.dataDirectory) }
            let record = try store.importLayout(images + "/layers", as: "t/layers:1")
            let dirs = try store.rootfsLayers(record)  // top first
            #expect(dirs.count == 3)
            var st = stat()
            #expect(lstat(dirs[1] + "/gone", &st) == 0)
            #expect((st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == 0, "whiteout of /gone")
            let opaque = try await Shell.output("python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], \"trusted.overlay.opaque\").decode())' \(dirs[1])/d")
            #expect(opaque == "y\n")
            #expect(!FileSystem.exists(dirs[2] + "/dev/evil-null"), "device nodes are skipped")
            #expect(lstat(dirs[2] + "/keep", &st) == 0 && st.st_uid == 1234 && st.st_gid == 2345 && (st.st_mode & 0o7777) == 0o4755)
            #expect(FileSystem.exists(dirs[2] + "/fifo"))
        }
    }
}
