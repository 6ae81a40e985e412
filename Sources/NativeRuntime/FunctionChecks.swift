import Runner
import CgroupDriver
import OCIImage
import RunnerOS

/// What a fn's definition must satisfy for any container of it to start: checked when the fn
/// is created or updated (400), so a fn that could never run is refused once, with the same
/// message every call of it would otherwise get.
public enum FunctionChecks {
    /// The image reference parses (the registry is not asked: the image may come later).
    public static func image(_ reference: String) throws(RunnerError) {
        _ = try ImageReference.parse(reference)
    }

    /// Memory and CPU at least the kernel minimums; the upper bounds are Fn's range, since a
    /// larger node may take the fn later.
    public static func limits(memoryMB: UInt64, cpuMillicores: UInt64) throws(RunnerError) {
        var limits = ResourceLimits()
        limits.memoryBytes = memoryMB << 20
        limits.cpuMillicores = cpuMillicores > 0 ? Int(cpuMillicores) : nil
        try limits.validate(hostCPUs: 1024)
    }
}
