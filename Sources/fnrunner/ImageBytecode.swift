import CLIOptions
import FoundationEssentials
import OCIImage
import PythonBytecode
import RunnerOS
import Sandbox

extension RuntimeOptions {
    /// Builds the bytecode layer of an image just pulled or imported (unless FN_PYTHON_BYTECODE
    /// is off), trying again one that got none before, and says what happened on stderr. The
    /// image stays usable whatever happens here: a node without the layer compiles at start.
    func buildBytecode(_ record: ImageRecord, in images: ImageStore) async {
        guard images.stacksBytecode else { return }
        let logger = makeLogger(label: "fnrunner.bytecode")
        let env = FnEnvironment(ProcessInfo.processInfo.environment)
        let sandbox: Sandbox
        let lease: StoreLease
        do {
            // Functions run as Fn's 1000:1000 unless the node runs them as the image's user.
            let user = try env.bool("FN_USE_IMAGE_USER", default: false) ? nil : "1000:1000"
            lease = try images.lease()
            do {
                sandbox = try Sandbox(
                    configuration: SandboxConfiguration(stateDirectory: stateDirectory, cgroupRoot: cgroupRoot, logger: logger, poolSize: 0))
            } catch {
                lease.release()
                throw error
            }
            defer { lease.release() }
            let outcome = await BytecodeLayerBuilder(sandbox: sandbox, store: images, user: user, logger: logger)
                .ensure(record, retryingSkipped: true)
            await sandbox.shutdown()
            switch outcome {
            case .built(let files, let bytes, let millis):
                printError("bytecode layer: \(files) modules compiled (\(formatBytes(bytes))) in \(millis) ms")
            case .present: break
            case .skipped(let reason):
                if reason != BytecodeLayerBuilder.noInterpreter { printError("no bytecode layer: \(reason)") }
            }
        } catch {
            printError("no bytecode layer: \(error)")
        }
    }
}
