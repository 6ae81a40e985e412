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
/// At least as strict as Docker's default profile for a container with Docker's default
/// capabilities, call by call (the README's table lists each difference and why), written as a
/// deny list: everything is allowed except what would let a function reach the host's kernel
/// state or other tenants (mounts, namespaces, modules, kexec, reboot, ptrace, keyrings, BPF,
/// perf, clocks, swap, raw I/O ports, io_uring, NUMA policy, vsock and AF_ALG sockets, foreign
/// personalities). Denied calls fail with EPERM, which programs handle, instead of killing
/// them; system calls newer than this list are answered ENOSYS, as if the kernel lacked them, so
/// a kernel upgrade never opens a call nobody reviewed. Syscalls of a foreign architecture
/// (x32/i386 through int 0x80) are killed by libseccomp's bad-arch action.
public struct SeccompProfile: Sendable {
    /// sock_filter instructions, 8 bytes each.
    public let program: [UInt64]

    public static let deniedSyscalls = [
        "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "open_tree_attr", "fsopen",
        "fsconfig", "fsmount", "fspick", "mount_setattr", "unshare", "setns", "listns", "swapon", "swapoff", "reboot",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "create_module", "query_module",
        "get_kernel_syms", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise", "kcmp",
        "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "settimeofday", "clock_settime",
        "clock_adjtime", "adjtimex", "acct", "quotactl", "quotactl_fd", "lookup_dcookie", "open_by_handle_at",
        "name_to_handle_at", "iopl", "ioperm", "syslog", "vhangup", "nfsservctl", "uselib", "_sysctl", "sysfs", "ustat",
        "fanotify_init", "pciconfig_read", "pciconfig_write", "pciconfig_iobase", "io_uring_setup", "io_uring_enter",
        "io_uring_register", "mbind", "set_mempolicy", "get_mempolicy", "set_mempolicy_home_node", "migrate_pages",
        "move_pages", "sethostname", "setdomainname", "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
        "file_getattr", "file_setattr", "rseq_slice_yield", "getpmsg", "putpmsg", "afs_syscall", "tuxcall",
        "security", "vserver",
    ]

    /// Numbers of calls newer than the libseccomp this was built with may know (the same on
    /// every architecture from 425 on). (x86_64's uprobe and uretprobe are not here: the kernel
    /// lets them past every seccomp filter, and fails them unless called from its own uprobe
    /// trampoline.)
    static let numbersOfNewerCalls: [String: Int32] = {
        let n: [String: Int32] = [
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
            "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_getfd": 438, "process_madvise": 440,
            "mount_setattr": 442, "quotactl_fd": 443, "set_mempolicy_home_node": 450, "lsm_get_self_attr": 459,
            "lsm_set_self_attr": 460, "lsm_list_modules": 461, "open_tree_attr": 467, "file_getattr": 468,
            "file_setattr": 469, "listns": 470, "rseq_slice_yield": 471,
        ]
        return n
    }()

    /// The highest system call number this profile was reviewed against: above it, ENOSYS.
    static let newestReviewedCall: UInt32 = 471

    /// Socket families a function may not open: AF_ALG (38, the kernel's crypto API, a long
    /// run of kernel bugs) and AF_VSOCK (40, not separated by network namespaces: it reaches
    /// the hypervisor and other guests' services).
    static let deniedSocketFamilies: [UInt64] = [38, 40]

    /// personality(2) values allowed, as in Docker: PER_LINUX, PER_LINUX32, UNAME26, both,
    /// and the query 0xffffffff. Everything else (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, ...)
    /// is refused.
    static let allowedPersonalities: [UInt32] = [0, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff]

    /// clone flags that create namespaces; clone with any of them is refused. (CLONE_NEWTIME
    /// is not among them: on clone(2) its bit is part of the exit signal; only clone3 and
    /// unshare take it, and both are refused.)
    static let namespaceCloneFlags: [UInt64] = [
        0x0002_0000,  // CLONE_NEWNS
        0x0200_0000,  // CLONE_NEWCGROUP
        0x0400_0000,  // CLONE_NEWUTS
        0x0800_0000,  // CLONE_NEWIPC
        0x1000_0000,  // CLONE_NEWUSER
        0x2000_0000,  // CLONE_NEWPID
        0x4000_0000,  // CLONE_NEWNET
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
        // A binary tree of syscall numbers, so an allowed call does not pass every rule first.
        try check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2), "seccomp_attr_set optimize")
        for name in deniedSyscalls {
            var nr = seccomp_syscall_resolve_name(name)
            if nr < 0, let known = numbersOfNewerCalls[name] { nr = known }
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
        // The kernel reads the family as a 32-bit int: compare only those bits, so junk in the
        // upper half cannot slip past.
        let socketCall = seccomp_syscall_resolve_name("socket")
        for family in deniedSocketFamilies {
            var cmp = scmp_arg_cmp(arg: 0, op: SCMP_CMP_MASKED_EQ, datum_a: 0xffff_ffff, datum_b: family)
            try check(seccomp_rule_add_array(ctx, actErrno(EPERM), socketCall, 1, &cmp), "seccomp_rule_add socket")
        }

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
        return SeccompProfile(program: prefix(personality: seccomp_syscall_resolve_name("personality")) + program)
    }

    /// A few instructions in front of libseccomp's program, for what its rules express poorly:
    /// on the native architecture, a system call numbered above `newestReviewedCall` answers
    /// ENOSYS (a libseccomp rule per number cost ~6 ms to compile in every `fnrunner run` and
    /// ~700 instructions to load per container), and personality(2) takes only
    /// `allowedPersonalities`, compared on the 32 bits the kernel reads (libseccomp takes one
    /// comparison per argument and rule, so "none of these" would need 60 rules). Everything
    /// else, and every other architecture, goes on to libseccomp's program.
    static func prefix(personality: Int32) -> [UInt64] {
        #if arch(x86_64)
        let nativeArch: UInt32 = 0xC000_003E  // AUDIT_ARCH_X86_64
        #elseif arch(arm64)
        let nativeArch: UInt32 = 0xC000_00B7  // AUDIT_ARCH_AARCH64
        #else
        return []
        #endif
        // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }, little-endian in one UInt64.
        func insn(_ code: UInt16, _ jt: Int, _ jf: Int, _ k: UInt32) -> UInt64 {
            UInt64(code) | UInt64(UInt8(jt)) << 16 | UInt64(UInt8(jf)) << 24 | UInt64(k) << 32
        }
        let ldAbsW: UInt16 = 0x20, jeqK: UInt16 = 0x15, jgeK: UInt16 = 0x35, retK: UInt16 = 0x06
        // seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low half, on these little-endian machines).
        let checks = allowedPersonalities.count
        let enosys = 6 + checks + 1  // index of "return ENOSYS"; libseccomp's program follows it
        let library = enosys + 1
        func to(_ target: Int, from index: Int) -> Int { target - index - 1 }
        var p: [UInt64] = [
            insn(ldAbsW, 0, 0, 4),
            insn(jeqK, 0, to(library, from: 1), nativeArch),
            insn(ldAbsW, 0, 0, 0),
            insn(jgeK, to(enosys, from: 3), 0, newestReviewedCall + 1),
            insn(jeqK, 0, to(library, from: 4), UInt32(bitPattern: personality)),
            insn(ldAbsW, 0, 0, 16),
        ]
        for (i, value) in allowedPersonalities.enumerated() { p.append(insn(jeqK, to(library, from: 6 + i), 0, value)) }
        p.append(insn(retK, 0, 0, actErrno(EPERM)))
        p.append(insn(retK, 0, 0, actErrno(ENOSYS)))
        return p
    }
}
