import CRunnerShim
import CSeccomp
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The default seccomp filter, compiled once to BPF with libseccomp in the runner, so the child
/// only has to hand the finished program to seccomp(2).
///
/// In the spirit of Docker's default profile, expressed as a deny list: everything is allowed
/// except what would let a function reach the host's kernel state (mounts, namespaces, modules,
/// kexec, reboot, ptrace, keyrings, BPF, perf, clocks, swap, raw I/O ports). Denied calls fail
/// with EPERM, which programs handle, instead of killing them. Syscalls of a foreign
/// architecture (x32/i386 through int 0x80) are killed by libseccomp's bad-arch action.
public struct SeccompProfile: Sendable {
    /// sock_filter instructions, 8 bytes each.
    public let program: [UInt64]

    public static let deniedSyscalls = [
        "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
        "fsmount", "fspick", "mount_setattr", "unshare", "setns", "swapon", "swapoff", "reboot", "kexec_load",
        "kexec_file_load", "init_module", "finit_module", "delete_module", "create_module", "query_module",
        "get_kernel_syms", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "keyctl", "add_key",
        "request_key", "bpf", "perf_event_open", "userfaultfd", "settimeofday", "clock_settime", "clock_adjtime",
        "adjtimex", "acct", "quotactl", "quotactl_fd", "lookup_dcookie", "open_by_handle_at", "name_to_handle_at",
        "iopl", "ioperm", "syslog", "vhangup", "nfsservctl", "uselib", "_sysctl", "sysfs", "fanotify_init",
        "pciconfig_read", "pciconfig_write", "pciconfig_iobase",
    ]

    /// clone flags that create namespaces; clone with any of them is refused.
    static let namespaceCloneFlags: [UInt64] = [
        0x0002_0000,  // CLONE_NEWNS
        0x0200_0000,  // CLONE_NEWCGROUP
        0x0400_0000,  // CLONE_NEWUTS
        0x0800_0000,  // CLONE_NEWIPC
        0x1000_0000,  // CLONE_NEWUSER
        0x2000_0000,  // CLONE_NEWPID
        0x4000_0000,  // CLONE_NEWNET
        0x0000_0080,  // CLONE_NEWTIME
    ]

    static let actAllow: UInt32 = 0x7fff_0000
    static func actErrno(_ e: Int32) -> UInt32 { 0x0005_0000 | (UInt32(e) & 0xffff) }

    /// Compiles the default profile.
    public static func makeDefault() throws(RunnerError) -> SeccompProfile {
        guard let ctx = seccomp_init(actAllow) else {
            throw RunnerError(.system, "libseccomp could not create a filter context", step: "seccomp_init")
        }
        defer { seccomp_release(ctx) }
        func check(_ rc: Int32, _ step: String) throws(RunnerError) {
            if rc < 0 { throw .system(step, errno: -rc, "building the seccomp profile failed") }
        }
        for name in deniedSyscalls {
            let nr = seccomp_syscall_resolve_name(name)
            if nr < 0 { continue }  // not a syscall on this architecture
            try check(seccomp_rule_add_array(ctx, actErrno(EPERM), nr, 0, nil), "seccomp_rule_add \(name)")
        }
        let clone = seccomp_syscall_resolve_name("clone")
        for flag in namespaceCloneFlags {
            var cmp = scmp_arg_cmp(arg: 0, op: SCMP_CMP_MASKED_EQ, datum_a: flag, datum_b: flag)
            try check(seccomp_rule_add_array(ctx, actErrno(EPERM), clone, 1, &cmp), "seccomp_rule_add clone")
        }
        // clone3 passes its flags in memory, out of a filter's reach: answer ENOSYS so libcs fall
        // back to clone(2), whose flags are checked above.
        let clone3 = seccomp_syscall_resolve_name("clone3")
        if clone3 >= 0 { try check(seccomp_rule_add_array(ctx, actErrno(ENOSYS), clone3, 0, nil), "seccomp_rule_add clone3") }

        let fd = rn_memfd("fnrunner-seccomp")
        if fd < 0 { throw .system("memfd_create", errno: -fd, "cannot export the seccomp profile") }
        defer { close(fd) }
        try check(seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
        let size = lseek(fd, 0, SEEK_END)
        if size <= 0 || size % 8 != 0 {
            throw RunnerError(.system, "seccomp_export_bpf wrote \(size) bytes", step: "seccomp_export_bpf")
        }
        var program = [UInt64](repeating: 0, count: size / 8)
        let n = program.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        if n != size { throw .system("pread", errno: errno, "cannot read back the seccomp profile") }
        return SeccompProfile(program: program)
    }
}
