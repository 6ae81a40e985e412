// The child half of the container start: everything between clone3 and execve.
//
// Rules for everything reachable from rn_child():
//   - no malloc, no stdio, no locks, no Swift: the parent is multithreaded and
//     the child is a copy of one of its threads;
//   - raw system calls only (raw_syscall.h), never glibc's wrappers: they write errno,
//     and a child cloned by a parked launcher shares the runner's memory (CLONE_VM) until
//     execve, so errno would land in the TLS of a runner thread. (glibc's set*id()
//     wrappers would also signal threads that do not exist in the child.) Only pure
//     string functions (strlen, strchr, memcpy) are called;
//   - nothing outside the child's own stack is written;
//   - signals stay blocked until just before execve, so no parent handler runs here;
//   - a failure writes {stage, errno} to the report pipe and exits.
#define _GNU_SOURCE
#include "rn_spawn.h"
#include "child.h"
#include "raw_syscall.h"
#include "exec_search.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static const char *const stage_names[RN_STAGE_COUNT] = {
    [RN_STAGE_NONE] = "none",
    [RN_STAGE_CLONE] = "clone3",
    [RN_STAGE_JOIN_CGROUP] = "join cgroup",
    [RN_STAGE_SIGNALS] = "reset signals",
    [RN_STAGE_SESSION] = "setsid",
    [RN_STAGE_STDIO] = "set up stdio",
    [RN_STAGE_LOOPBACK] = "bring up loopback",
    [RN_STAGE_MOUNT_PRIVATE] = "make mounts private",
    [RN_STAGE_ROOTFS] = "mount rootfs",
    [RN_STAGE_ROOTFS_READONLY] = "remount rootfs read-only",
    [RN_STAGE_MOUNT_PROC] = "mount /proc",
    [RN_STAGE_MOUNT_DEV] = "mount /dev",
    [RN_STAGE_DEVICE_NODES] = "create /dev nodes",
    [RN_STAGE_MOUNT_DEVPTS] = "mount /dev/pts",
    [RN_STAGE_MOUNT_SHM] = "mount /dev/shm",
    [RN_STAGE_MOUNT_SYS] = "mount /sys",
    [RN_STAGE_MOUNT_TMP] = "mount /tmp",
    [RN_STAGE_BIND_MOUNTS] = "bind mounts",
    [RN_STAGE_ATTACH_MOUNTS] = "attach private mounts",
    [RN_STAGE_MASK_PATHS] = "mask paths",
    [RN_STAGE_READONLY_PATHS] = "read-only paths",
    [RN_STAGE_PIVOT_ROOT] = "pivot_root",
    [RN_STAGE_HOSTNAME] = "sethostname",
    [RN_STAGE_RLIMITS] = "setrlimit",
    [RN_STAGE_CAPABILITY_BOUNDING] = "drop bounding capabilities",
    [RN_STAGE_SETGROUPS] = "setgroups",
    [RN_STAGE_SETGID] = "setgid",
    [RN_STAGE_SETUID] = "setuid",
    [RN_STAGE_CAPABILITIES] = "capset",
    [RN_STAGE_NO_NEW_PRIVS] = "no_new_privs",
    [RN_STAGE_SECCOMP] = "load seccomp filter",
    [RN_STAGE_CHDIR] = "chdir to working directory",
    [RN_STAGE_EXEC] = "execve",
    [RN_STAGE_INIT] = "start the init process",
};

const char *rn_stage_name(int stage) {
    if (stage < 0 || stage >= RN_STAGE_COUNT || stage_names[stage] == NULL) return "unknown stage";
    return stage_names[stage];
}

// Kernel layout of struct sigaction for rt_sigaction(2).
struct rn_ksigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

__attribute__((noreturn)) static void fail(int report_fd, int stage, long error) {
    rn_report r = {.stage = stage, .error = (int32_t)error};
    RAW3(SYS_write, report_fd, &r, sizeof r);
    for (;;) RAW1(SYS_exit_group, 127);
}

// `rc` is a raw system call's result: negative means -errno.
static void check(long rc, int report_fd, int stage) {
    if (rc < 0) fail(report_fd, stage, -rc);
}

static long sys_mount(const char *source, const char *target, const char *type, unsigned long flags, const void *data) {
    return RAW5(SYS_mount, source, target, type, flags, data);
}

// mkdir -p for a relative path, using a stack buffer. 0 or -errno.
static long make_dirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            long rc = RAW3(SYS_mkdirat, AT_FDCWD, buf, 0755);
            if (rc < 0 && rc != -EEXIST) return rc;
            buf[i] = saved;
        }
    }
    return 0;
}

static void bring_up_loopback(int report_fd) {
    long s = RAW3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    check(s, report_fd, RN_STAGE_LOOPBACK);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    check(RAW3(SYS_ioctl, s, SIOCGIFFLAGS, &ifr), report_fd, RN_STAGE_LOOPBACK);
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    check(RAW3(SYS_ioctl, s, SIOCSIFFLAGS, &ifr), report_fd, RN_STAGE_LOOPBACK);
    RAW1(SYS_close, s);
}

static void mount_dev(int report_fd) {
    check(sys_mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k"), report_fd,
          RN_STAGE_MOUNT_DEV);
    static const struct { const char *name; unsigned major, minor; } nodes[] = {
        {"dev/null", 1, 3}, {"dev/zero", 1, 5}, {"dev/full", 1, 7},
        {"dev/random", 1, 8}, {"dev/urandom", 1, 9}, {"dev/tty", 5, 0},
    };
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        check(RAW4(SYS_mknodat, AT_FDCWD, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)),
              report_fd, RN_STAGE_DEVICE_NODES);
    }
    static const struct { const char *target, *link; } links[] = {
        {"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"},
        {"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
        {"pts/ptmx", "dev/ptmx"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        check(RAW3(SYS_symlinkat, links[i].target, AT_FDCWD, links[i].link), report_fd, RN_STAGE_DEVICE_NODES);
    }
    check(RAW3(SYS_mkdirat, AT_FDCWD, "dev/pts", 0755), report_fd, RN_STAGE_MOUNT_DEVPTS);
    check(sys_mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"),
          report_fd, RN_STAGE_MOUNT_DEVPTS);
    check(RAW3(SYS_mkdirat, AT_FDCWD, "dev/shm", 01777), report_fd, RN_STAGE_MOUNT_SHM);
    check(sys_mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"), report_fd,
          RN_STAGE_MOUNT_SHM);
}

static void mask_paths(const char *const *paths, int report_fd) {
    for (; paths != NULL && *paths != NULL; paths++) {
        struct stat st;
        long rc = RAW4(SYS_newfstatat, AT_FDCWD, *paths, &st, 0);
        if (rc < 0) {
            if (rc == -ENOENT || rc == -ENOTDIR) continue;
            fail(report_fd, RN_STAGE_MASK_PATHS, -rc);
        }
        if (S_ISDIR(st.st_mode)) {
            check(sys_mount("tmpfs", *paths, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0"), report_fd,
                  RN_STAGE_MASK_PATHS);
        } else {
            check(sys_mount("/dev/null", *paths, NULL, MS_BIND, NULL), report_fd, RN_STAGE_MASK_PATHS);
        }
    }
}

static void readonly_paths(const char *const *paths, int report_fd) {
    for (; paths != NULL && *paths != NULL; paths++) {
        long rc = sys_mount(*paths, *paths, NULL, MS_BIND | MS_REC, NULL);
        if (rc < 0) {
            if (rc == -ENOENT || rc == -ENOTDIR) continue;
            fail(report_fd, RN_STAGE_READONLY_PATHS, -rc);
        }
        check(sys_mount(NULL, *paths, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
              report_fd, RN_STAGE_READONLY_PATHS);
    }
}

static void drop_privileges(const rn_spawn_spec *spec, int report_fd) {
    for (int cap = 0; cap <= spec->last_capability; cap++) {
        if (cap < 64 && (spec->keep_capabilities & (1ULL << cap))) continue;
        long rc = RAW2(SYS_prctl, PR_CAPBSET_DROP, cap);
        if (rc < 0 && rc != -EINVAL) fail(report_fd, RN_STAGE_CAPABILITY_BOUNDING, -rc);
    }
    long rc = RAW2(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
    if (rc < 0 && rc != -EINVAL) fail(report_fd, RN_STAGE_CAPABILITY_BOUNDING, -rc);
    if (spec->keep_capabilities != 0) check(RAW2(SYS_prctl, PR_SET_KEEPCAPS, 1), report_fd, RN_STAGE_CAPABILITIES);

    check(RAW2(SYS_setgroups, spec->ngroups, spec->groups), report_fd, RN_STAGE_SETGROUPS);
    check(RAW3(SYS_setresgid, spec->gid, spec->gid, spec->gid), report_fd, RN_STAGE_SETGID);
    check(RAW3(SYS_setresuid, spec->uid, spec->uid, spec->uid), report_fd, RN_STAGE_SETUID);

    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    for (int i = 0; i < 2; i++) {
        uint32_t bits = (uint32_t)(spec->keep_capabilities >> (32 * i));
        data[i].effective = bits;
        data[i].permitted = bits;
        data[i].inheritable = bits;
    }
    check(RAW2(SYS_capset, &header, data), report_fd, RN_STAGE_CAPABILITIES);
    for (int cap = 0; cap <= spec->last_capability && cap < 64; cap++) {
        if (spec->keep_capabilities & (1ULL << cap))
            check(RAW3(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap), report_fd, RN_STAGE_CAPABILITIES);
    }

    check(RAW2(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1), report_fd, RN_STAGE_NO_NEW_PRIVS);
    if (spec->seccomp_filter != NULL) {
        struct sock_fprog prog = {
            .len = (unsigned short)spec->seccomp_filter_len,
            .filter = (struct sock_filter *)spec->seccomp_filter,
        };
        check(RAW3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), report_fd, RN_STAGE_SECCOMP);
    }
}

static void exec_program(const rn_spawn_spec *spec, int report_fd) {
    fail(report_fd, RN_STAGE_EXEC,
         rn_exec_search(spec->argv[0], (char *const *)spec->argv, (char *const *)spec->envp, spec->path_env));
}

// Writes `n` in decimal to `buf` (at least 12 bytes).
static void decimal(int n, char *buf) {
    char tmp[12];
    int len = 0;
    do { tmp[len++] = (char)('0' + n % 10); n /= 10; } while (n > 0 && len < 11);
    for (int i = 0; i < len; i++) buf[i] = tmp[len - 1 - i];
    buf[len] = '\0';
}

// Execs fnrunner-init from `spec->init_fd` with the report pipe left open across the exec:
// init forks, and its child execs the function or reports the failure on that pipe.
static void exec_init(const rn_spawn_spec *spec, int report_fd) {
    enum { MAX_ARGS = 1024 };
    const char *argv[MAX_ARGS + 4];
    char fd_text[12];
    size_t argc = 0;
    while (spec->argv[argc] != NULL) {
        if (argc == MAX_ARGS) fail(report_fd, RN_STAGE_INIT, E2BIG);
        argc++;
    }
    decimal(report_fd, fd_text);
    argv[0] = "fnrunner-init";
    argv[1] = fd_text;
    argv[2] = spec->path_env != NULL ? spec->path_env : "";
    for (size_t i = 0; i <= argc; i++) argv[3 + i] = spec->argv[i];
    check(RAW3(SYS_fcntl, report_fd, F_SETFD, 0), report_fd, RN_STAGE_INIT);
    long rc = RAW5(SYS_execveat, spec->init_fd, "", argv, spec->envp, AT_EMPTY_PATH);
    RAW3(SYS_fcntl, report_fd, F_SETFD, FD_CLOEXEC);
    fail(report_fd, RN_STAGE_INIT, -rc);
}

// Closes every fd from 3 up except those in `keep` (at most 12). The child is a copy of a
// multithreaded parent: it holds the parent's ends of its own pipes and the pipes of starts
// running concurrently in other threads, which must not wait for this child's exec.
static void close_other_fds(const int *keep, int n) {
    int sorted[12];
    int m = 0;
    for (int i = 0; i < n && m < 12; i++) {
        if (keep[i] < 3) continue;
        int j = m++;
        while (j > 0 && sorted[j - 1] > keep[i]) { sorted[j] = sorted[j - 1]; j--; }
        sorted[j] = keep[i];
    }
    unsigned int from = 3;
    for (int i = 0; i < m; i++) {
        if ((unsigned int)sorted[i] > from) RAW3(SYS_close_range, from, (unsigned int)sorted[i] - 1, 0);
        if ((unsigned int)sorted[i] >= from) from = (unsigned int)sorted[i] + 1;
    }
    RAW3(SYS_close_range, from, ~0U, 0);
}

long rn_join_cgroups(const int *fds, size_t n) {
    for (size_t i = 0; i < n; i++) {
        long w;
        do { w = RAW3(SYS_write, fds[i], "0", 1); } while (w == -EINTR);
        if (w != 1) return w < 0 ? w : -EIO;
    }
    return 0;
}

__attribute__((noreturn)) void rn_child(const rn_spawn_spec *spec, int report_fd, int network_ready) {
    // The v1 cgroups first, so that everything below is charged to the container.
    long joined = rn_join_cgroups(spec->join_task_fds, spec->njoin_task_fds);
    if (joined < 0) fail(report_fd, RN_STAGE_JOIN_CGROUP, (int)-joined);
    // Signals: blocked (inherited from the parent's mask). Reset every disposition,
    // including ignored ones such as SIGPIPE, which would survive execve.
    struct rn_ksigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        RAW4(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(uint64_t));
    }
    RAW1(SYS_umask, 0);
    int keep[5 + RN_MAX_ATTACH_MOUNTS] = {report_fd, spec->stdio[0], spec->stdio[1], spec->stdio[2], spec->init_fd};
    size_t nattach = spec->nattach < RN_MAX_ATTACH_MOUNTS ? spec->nattach : RN_MAX_ATTACH_MOUNTS;
    for (size_t i = 0; i < nattach; i++) keep[5 + i] = spec->attach[i].fd;
    close_other_fds(keep, 5 + (int)nattach);
    // A session and process group of its own: otherwise kill(0, ...) or kill(-pgid, ...) in
    // one container would reach other containers (and the runner) sharing the runner's group.
    check(RAW0(SYS_setsid), report_fd, RN_STAGE_SESSION);

    long tmp[3];
    for (int i = 0; i < 3; i++) {
        tmp[i] = RAW3(SYS_fcntl, spec->stdio[i], F_DUPFD_CLOEXEC, 3);
        check(tmp[i], report_fd, RN_STAGE_STDIO);
    }
    for (int i = 0; i < 3; i++) check(RAW3(SYS_dup3, tmp[i], i, 0), report_fd, RN_STAGE_STDIO);
    check(RAW3(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC), report_fd, RN_STAGE_STDIO);

    if (spec->new_network && !network_ready) bring_up_loopback(report_fd);

    check(sys_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), report_fd, RN_STAGE_MOUNT_PRIVATE);
    if (spec->bind_source != NULL) {
        check(sys_mount(spec->bind_source, spec->rootfs_target, NULL, MS_BIND, NULL), report_fd, RN_STAGE_ROOTFS);
        if (spec->readonly_rootfs)
            check(sys_mount(NULL, spec->rootfs_target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV, NULL), report_fd,
                  RN_STAGE_ROOTFS_READONLY);
    } else {
        check(sys_mount("overlay", spec->rootfs_target, "overlay", MS_RDONLY | MS_NODEV, spec->overlay_options),
              report_fd, RN_STAGE_ROOTFS);
    }
    check(RAW1(SYS_chdir, spec->rootfs_target), report_fd, RN_STAGE_ROOTFS);

    check(sys_mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), report_fd, RN_STAGE_MOUNT_PROC);
    mount_dev(report_fd);
    if (spec->mount_sys)
        check(sys_mount("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), report_fd,
              RN_STAGE_MOUNT_SYS);
    check(sys_mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, spec->tmp_options), report_fd,
          RN_STAGE_MOUNT_TMP);

    for (size_t i = 0; i < spec->nbinds; i++) {
        const rn_bind_mount *b = &spec->binds[i];
        if (b->create_target) check(make_dirs(b->target), report_fd, RN_STAGE_BIND_MOUNTS);
        check(sys_mount(b->source, b->target, NULL, MS_BIND | MS_REC, NULL), report_fd, RN_STAGE_BIND_MOUNTS);
        unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (b->read_only ? MS_RDONLY : 0);
        check(sys_mount(NULL, b->target, NULL, flags, NULL), report_fd, RN_STAGE_BIND_MOUNTS);
    }
    // Only under the fresh /tmp tmpfs (the target's parents are made there, never in the image).
    for (size_t i = 0; i < nattach; i++) {
        const rn_attach_mount *a = &spec->attach[i];
        if (strncmp(a->target, "tmp/", 4) != 0) fail(report_fd, RN_STAGE_ATTACH_MOUNTS, EINVAL);
        check(make_dirs(a->target), report_fd, RN_STAGE_ATTACH_MOUNTS);
        check(RAW5(SYS_move_mount, a->fd, "", AT_FDCWD, a->target, MOVE_MOUNT_F_EMPTY_PATH), report_fd,
              RN_STAGE_ATTACH_MOUNTS);
    }
    mask_paths(spec->masked_paths, report_fd);
    readonly_paths(spec->readonly_paths, report_fd);

    check(RAW2(SYS_pivot_root, ".", "."), report_fd, RN_STAGE_PIVOT_ROOT);
    check(RAW2(SYS_umount2, ".", MNT_DETACH), report_fd, RN_STAGE_PIVOT_ROOT);
    check(RAW1(SYS_chdir, "/"), report_fd, RN_STAGE_PIVOT_ROOT);

    if (spec->hostname != NULL)
        check(RAW2(SYS_sethostname, spec->hostname, strlen(spec->hostname)), report_fd, RN_STAGE_HOSTNAME);
    for (size_t i = 0; i < spec->nrlimits; i++) {
        struct { uint64_t cur, max; } lim = {spec->rlimits[i].soft, spec->rlimits[i].hard};
        check(RAW4(SYS_prlimit64, 0, spec->rlimits[i].resource, &lim, NULL), report_fd, RN_STAGE_RLIMITS);
    }
    check(RAW1(SYS_chdir, spec->workdir), report_fd, RN_STAGE_CHDIR);
    drop_privileges(spec, report_fd);
    RAW1(SYS_umask, 022);

    uint64_t empty = 0;
    RAW4(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, sizeof empty);
    if (spec->init_fd >= 0) exec_init(spec, report_fd);
    exec_program(spec, report_fd);
    for (;;) RAW1(SYS_exit_group, 127);
}
