import CgroupDriver
import NodeNetwork
import RunnerOS

/// A sandbox made before its container: cgroups in every hierarchy, a launcher parked in them
/// with a network namespace of its own, and, for the bridge, that namespace already on it.
///
/// The pool keeps these ready; a bridge start without one makes one on the spot, because the
/// namespace must be on the bridge before the function's first instruction runs.
struct PreparedSandbox: Sendable {
    let cgroup: CgroupSet
    let launcher: ParkedLauncher
    let attachment: NetworkAttachment?
    /// Keeps the namespace (and its veth) while the attachment lives.
    let namespace: NamespaceHold?

    /// Makes one. `onLauncherMade` runs as soon as its launcher exists, `onLauncherFreed` once
    /// the launcher has been reaped (also when this fails later on). On the bridge, the hosts
    /// file names `hostname` (a start that names another rewrites it).
    static func make(
        name: String, driver: CgroupDriver, instanceID: String, network: BridgeNetwork?, hostname: String,
        limits: ResourceLimits = ResourceLimits(),
        onLauncherMade: () -> Void = {}, onLauncherFreed: @escaping @Sendable () -> Void = {}
    ) throws(RunnerError) -> PreparedSandbox {
        let cgroup = try driver.create(instance: instanceID, container: name, limits: limits)
        let launcher: ParkedLauncher
        do {
            launcher = try ParkedLauncher(network: true, cgroup: cgroup, driver: driver, onFreed: onLauncherFreed)
            onLauncherMade()
        } catch {
            try? driver.delete(cgroup)
            throw error
        }
        let bare = PreparedSandbox(cgroup: cgroup, launcher: launcher, attachment: nil, namespace: nil)
        do throws(RunnerError) {
            guard let network else { return bare }
            let namespace = try NamespaceHold(pid: launcher.pid)
            let attachment = try network.attach(namespace: namespace.descriptor)
            do throws(RunnerError) {
                try network.writeHosts(attachment, hostname: hostname)
            } catch {
                network.detach(attachment)
                namespace.release()
                throw error
            }
            return PreparedSandbox(cgroup: cgroup, launcher: launcher, attachment: attachment, namespace: namespace)
        } catch {
            bare.discard(driver: driver, network: network)
            throw error
        }
    }

    /// Ends one that will not be used: the launcher exits, the veth, address and cgroups go.
    func discard(driver: CgroupDriver, network: BridgeNetwork?) {
        launcher.dismiss()
        if let attachment { network?.detach(attachment) }
        namespace?.release()
        try? driver.delete(cgroup)
    }
}
