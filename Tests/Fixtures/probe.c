// probe: a static test program copied into test rootfs images. Each subcommand exercises one
// thing the container runtime must allow or refuse, and prints what happened.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


// Every call the default seccomp profile denies, by number (new ones by their number, which
// is the same on every architecture from 425 on), tried with arguments that would otherwise
// be harmless. Names that do not exist on this architecture print "n/a".
struct denied_call { const char *name; long nr; };
#define CALL(n) {#n, SYS_##n}
#define NA(n) {#n, -1}
static const struct denied_call denied_calls[] = {
    CALL(mount), CALL(umount2), CALL(pivot_root), CALL(chroot), {"move_mount", 429}, {"open_tree", 428},
    {"open_tree_attr", 467}, {"fsopen", 430}, {"fsconfig", 431}, {"fsmount", 432}, {"fspick", 433},
    {"mount_setattr", 442}, CALL(unshare), CALL(setns), {"listns", 470}, CALL(swapon), CALL(swapoff), CALL(reboot),
    CALL(kexec_load), {"kexec_file_load", 320 /* x86_64; aarch64 294 */}, CALL(init_module), CALL(finit_module),
    CALL(delete_module), CALL(ptrace), CALL(process_vm_readv), CALL(process_vm_writev), {"pidfd_getfd", 438},
    {"process_madvise", 440}, CALL(kcmp), CALL(keyctl), CALL(add_key), CALL(request_key), CALL(bpf),
    CALL(perf_event_open), CALL(userfaultfd), CALL(settimeofday), CALL(clock_settime), CALL(clock_adjtime),
    CALL(adjtimex), CALL(acct), CALL(quotactl), {"quotactl_fd", 443}, CALL(lookup_dcookie), CALL(open_by_handle_at),
    CALL(name_to_handle_at), CALL(syslog), CALL(vhangup), CALL(nfsservctl), CALL(fanotify_init),
    {"io_uring_setup", 425}, {"io_uring_enter", 426}, {"io_uring_register", 427}, CALL(mbind), CALL(set_mempolicy),
    CALL(get_mempolicy), {"set_mempolicy_home_node", 450}, CALL(migrate_pages), CALL(move_pages), CALL(sethostname),
    CALL(setdomainname), {"lsm_get_self_attr", 459}, {"lsm_set_self_attr", 460}, {"lsm_list_modules", 461},
    {"file_getattr", 468}, {"file_setattr", 469}, {"rseq_slice_yield", 471},
#if defined(__x86_64__)
    NA(umount), CALL(create_module), CALL(query_module), CALL(get_kernel_syms), CALL(iopl), CALL(ioperm),
    CALL(uselib), CALL(_sysctl), CALL(sysfs), CALL(ustat), CALL(getpmsg), CALL(putpmsg),
    CALL(afs_syscall), CALL(tuxcall), CALL(security), CALL(vserver),
#else
    NA(umount), NA(create_module), NA(query_module), NA(get_kernel_syms), NA(iopl), NA(ioperm), NA(uselib),
    NA(_sysctl), NA(sysfs), NA(ustat), NA(getpmsg), NA(putpmsg), NA(afs_syscall), NA(tuxcall),
    NA(security), NA(vserver),
#endif
    NA(pciconfig_read), NA(pciconfig_write), NA(pciconfig_iobase),
};

static const char *err_name(int e) {
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    default: return strerror(e);
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) { fprintf(stderr, "usage: probe syscalls|counter|burn S|alloc MB|forks N|exit N\n"); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "denied")) {
        // Some of these (sethostname, vhangup) act on whatever namespace runs them: only ever
        // inside a container, as its PID 1 or as the first child of its init (no process on a
        // host has a pid below 3: 1 is its init and 2 kthreadd).
        if (getpid() > 2) { fprintf(stderr, "probe denied: runs only as a container's PID 1 or 2\n"); return 2; }
        for (size_t i = 0; i < sizeof denied_calls / sizeof denied_calls[0]; i++) {
            long nr = denied_calls[i].nr;
#if defined(__aarch64__)
            if (!strcmp(denied_calls[i].name, "kexec_file_load")) nr = 294;
#endif
            if (nr < 0) { printf("%s=n/a\n", denied_calls[i].name); continue; }
            long rc = syscall(nr, -1L, 0L, 0L, 0L, 0L, 0L);
            printf("%s=%s\n", denied_calls[i].name, err_name(rc < 0 ? errno : 0));
        }
        // Argument rules: socket families, personality values; and what stays allowed.
        long rc = syscall(SYS_socket, 40L, 1L, 0L);
        printf("socket_vsock=%s\n", err_name(rc < 0 ? errno : 0));
        rc = syscall(SYS_socket, (1L << 32) | 40L, 1L, 0L);
        printf("socket_vsock_high_bits=%s\n", err_name(rc < 0 ? errno : 0));
        rc = syscall(SYS_socket, 38L, 5L, 0L);
        printf("socket_alg=%s\n", err_name(rc < 0 ? errno : 0));
        rc = syscall(SYS_socket, 1L, 1L, 0L);
        printf("socket_unix=%s\n", err_name(rc < 0 ? errno : 0));
        rc = syscall(SYS_personality, 0x0400000L);
        printf("personality_read_implies_exec=%s\n", err_name(rc < 0 ? errno : 0));
        rc = syscall(SYS_personality, 0x0040000L);
        printf("personality_addr_no_randomize=%s\n", err_name(rc < 0 ? errno : 0));
        rc = syscall(SYS_personality, 0xffffffffL);
        printf("personality_query=%s\n", err_name(rc < 0 ? errno : 0));
        rc = syscall(SYS_personality, 0x20008L);
        printf("personality_linux32_uname26=%s\n", err_name(rc < 0 ? errno : 0));
        rc = syscall(SYS_personality, 0L);
        printf("personality_linux=%s\n", err_name(rc < 0 ? errno : 0));
        rc = syscall(SYS_clone3, NULL, 0L);
        printf("clone3=%s\n", err_name(rc < 0 ? errno : 0));
        rc = syscall(600L);
        printf("unreviewed_600=%s\n", err_name(rc < 0 ? errno : 0));
        return 0;
    }
    if (!strcmp(cmd, "syscalls")) {
        int rc;
        rc = mount("none", "/tmp", "tmpfs", 0, NULL);
        printf("mount=%s\n", err_name(rc < 0 ? errno : 0));
        rc = (int)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        printf("ptrace=%s\n", err_name(rc < 0 ? errno : 0));
        rc = unshare(CLONE_NEWUSER);
        printf("unshare=%s\n", err_name(rc < 0 ? errno : 0));
        rc = (int)syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL);
        printf("keyctl=%s\n", err_name(rc < 0 ? errno : 0));
        rc = (int)syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, NULL);
        if (rc == 0) _exit(0);
        if (rc > 0) waitpid(rc, NULL, 0);
        printf("clone_newns=%s\n", err_name(rc < 0 ? errno : 0));
        rc = (int)syscall(SYS_getpid);
        printf("getpid=%d\n", rc);
        return 0;
    }
    if (!strcmp(cmd, "counter")) {
        for (long i = 0;; i++) {
            printf("%ld\n", i);
            usleep(10000);
        }
    }
    if (!strcmp(cmd, "burn") && argc > 2) {
        double until = now() + atof(argv[2]);
        volatile unsigned long x = 0;
        while (now() < until) for (int i = 0; i < 100000; i++) x += i;
        return 0;
    }
    if (!strcmp(cmd, "alloc") && argc > 2) {
        size_t mb = strtoul(argv[2], NULL, 10);
        for (size_t i = 0; i < mb; i++) {
            char *p = malloc(1 << 20);
            if (!p) { printf("malloc failed at %zu MiB\n", i); return 3; }
            memset(p, 1, 1 << 20);
        }
        printf("allocated %zu MiB\n", mb);
        return 0;
    }
    if (!strcmp(cmd, "forks") && argc > 2) {
        int n = atoi(argv[2]), ok = 0, failed = 0;
        for (int i = 0; i < n; i++) {
            pid_t p = fork();
            if (p == 0) { pause(); _exit(0); }
            if (p > 0) ok++; else failed++;
        }
        printf("forked=%d failed=%d\n", ok, failed);
        kill(0, SIGKILL);
        return 0;
    }
    if (!strcmp(cmd, "exit") && argc > 2) return atoi(argv[2]);
    fprintf(stderr, "probe: unknown command %s\n", cmd);
    return 2;
}
