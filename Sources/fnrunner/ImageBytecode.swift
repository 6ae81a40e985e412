import CLIOptions
import FoundationEssentials
import OCIImage
import PythonBytecode
import RunnerOS
import Sandbox

extension RuntimeOptions {
    /// Builds the bytecode layer of an image just pulled or imported (unless FN_PYTHON_BYTECODE
    /// is off), trying again one that got none before, and says what happened on stderr. The
    /// image stays usable whatever happens here: without the layer, its modules are compiled at
    /// every start, as before. Only a Python image costs a sandbox.
    func buildBytecode(_ record: ImageRecord, in images: ImageStore) async {
        guard images.stacksBytecode else { return }
        do {
            // Functions run as Fn's 1000:1000 unless the node runs them as the image's user.
            let env = FnEnvironment(ProcessInfo.processInfo.environment)
            let user = try env.bool("FN_USE_IMAGE_USER", default: false) ? nil : "1000:1000"
            let lease = try images.lease()
            defer { lease.release() }
            guard try BytecodeLayerBuilder.isPythonImage(record, in: images) else { return }
            let logger = makeLogger(label: "fnrunner.bytecode")
            let sandbox = try Sandbox(
                configuration: SandboxConfiguration(stateDirectory: stateDirectory, cgroupRoot: cgroupRoot, logger: logger, poolSize: 0))
            let outcome = await BytecodeLayerBuilder(sandbox: sandbox, store: images, user: user, logger: logger)
                .ensure(record, retryingSkipped: true)
            await sandbox.shutdown()
            switch outcome {
            case .built(let files, let bytes, let millis):
                printError("bytecode layer: \(files) modules compiled (\(formatBytes(bytes))) in \(millis) ms")
            case .present: break
            case .skipped(let reason): printError("no bytecode layer: \(reason)")
            }
        } catch {
            printError("no bytecode layer: \(error)")
        }
    }
}
