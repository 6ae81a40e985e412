// rn_spawn: start a container process in fresh namespaces.
//
// Why C: the child of clone3() in a multithreaded Swift process may only make
// raw system calls (no malloc, no locks, no Swift runtime) until it execs.
// Everything the child needs is prepared by the parent in `rn_spawn_spec`;
// the child only walks that structure.
#ifndef RN_SPAWN_H
#define RN_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The steps of container setup, reported back with the errno when one fails.
typedef enum {
    RN_STAGE_NONE = 0,
    RN_STAGE_CLONE,
    RN_STAGE_JOIN_CGROUP,
    RN_STAGE_SIGNALS,
    RN_STAGE_SESSION,
    RN_STAGE_STDIO,
    RN_STAGE_LOOPBACK,
    RN_STAGE_MOUNT_PRIVATE,
    RN_STAGE_ROOTFS,
    RN_STAGE_ROOTFS_READONLY,
    RN_STAGE_MOUNT_PROC,
    RN_STAGE_MOUNT_DEV,
    RN_STAGE_DEVICE_NODES,
    RN_STAGE_MOUNT_DEVPTS,
    RN_STAGE_MOUNT_SHM,
    RN_STAGE_MOUNT_SYS,
    RN_STAGE_MOUNT_TMP,
    RN_STAGE_BIND_MOUNTS,
    RN_STAGE_ATTACH_MOUNTS,
    RN_STAGE_MASK_PATHS,
    RN_STAGE_READONLY_PATHS,
    RN_STAGE_PIVOT_ROOT,
    RN_STAGE_HOSTNAME,
    RN_STAGE_RLIMITS,
    RN_STAGE_CAPABILITY_BOUNDING,
    RN_STAGE_SETGROUPS,
    RN_STAGE_SETGID,
    RN_STAGE_SETUID,
    RN_STAGE_CAPABILITIES,
    RN_STAGE_NO_NEW_PRIVS,
    RN_STAGE_SECCOMP,
    RN_STAGE_CHDIR,
    RN_STAGE_EXEC,
    RN_STAGE_INIT,
    RN_STAGE_COUNT
} rn_stage;

/// A human-readable name for a stage ("mount /proc", "execve", ...).
const char *rn_stage_name(int stage);

#define RN_MAX_ATTACH_MOUNTS 3

/// A read-write bind mount of a host directory into the container.
typedef struct {
    const char *source;      // absolute host path
    const char *target;      // path inside the rootfs, relative (no leading '/')
    int create_target;       // mkdir -p the target first (only works on writable mounts such as /tmp)
    int read_only;
} rn_bind_mount;

/// A mount the runner made detached (fsmount) and holds by descriptor, attached in the
/// container with move_mount: the runner keeps reaching its contents through that descriptor,
/// never through a path a function could redirect.
typedef struct {
    int fd;                  // the fsmount(2) descriptor, kept open in the child until execve
    const char *target;      // path inside the rootfs under tmp/, relative; created first
} rn_attach_mount;

typedef struct {
    int resource;            // RLIMIT_*
    uint64_t soft;
    uint64_t hard;
} rn_rlimit;

typedef struct {
    // Root filesystem. The child mounts it over `rootfs_target`, a directory
    // that is empty on the host, inside its own private mount namespace.
    const char *rootfs_target;
    const char *bind_source;          // one layer: bound read-only (or NULL)
    const char *overlay_options;      // several layers: "lowerdir=a:b" (or NULL)
    int readonly_rootfs;

    // Process.
    const char *const *argv;          // NULL-terminated
    const char *const *envp;          // NULL-terminated
    const char *path_env;             // PATH used to find argv[0] when it has no '/'
    const char *workdir;              // absolute, inside the container
    const char *hostname;
    uint32_t uid;
    uint32_t gid;
    const uint32_t *groups;
    size_t ngroups;
    int stdio[3];                     // fds in the parent that become 0, 1, 2

    // Namespaces and cgroups.
    int new_network;                  // CLONE_NEWNET with loopback up
    int cgroup_fd;                    // cgroup v2 directory fd for CLONE_INTO_CGROUP, or -1
    // Open `tasks` files of the v1 hierarchies the child joins: it writes "0" (itself) into
    // each first thing. A thread moving itself skips the kernel's global threadgroup lock,
    // whose write side waits for an RCU grace period (7-15 ms after a quiet moment here) when
    // the parent writes the child's pid into cgroup.procs instead.
    const int *join_task_fds;
    size_t njoin_task_fds;

    // Mounts inside the rootfs.
    const char *tmp_options;          // data for the /tmp tmpfs ("mode=1777,size=...")
    int mount_sys;
    const rn_bind_mount *binds;
    size_t nbinds;
    const rn_attach_mount *attach;    // at most RN_MAX_ATTACH_MOUNTS
    size_t nattach;
    const char *const *masked_paths;  // relative to the rootfs, NULL-terminated
    const char *const *readonly_paths;// relative to the rootfs, NULL-terminated

    // Limits and privileges.
    const rn_rlimit *rlimits;
    size_t nrlimits;
    uint64_t keep_capabilities;       // bit mask of capabilities that survive (usually 0)
    int last_capability;              // highest capability number the kernel knows
    const void *seccomp_filter;       // struct sock_filter[] built in the parent (or NULL)
    size_t seccomp_filter_len;        // number of instructions
    // The container's PID 1: a sealed memfd holding fnrunner-init, exec'd with execveat after
    // every setup step; it starts argv as its child. -1: argv itself becomes PID 1.
    int init_fd;
} rn_spawn_spec;

typedef struct {
    pid_t pid;
    int pidfd;          // CLONE_PIDFD: for waiting and signalling without pid reuse races
    int report_fd;      // read end: EOF means execve succeeded, else an rn_report
} rn_spawned;

typedef struct {
    int32_t stage;
    int32_t error;      // errno
} rn_report;

/// Clones the child into new namespaces. Returns 0 or -errno (clone failed).
int rn_spawn(const rn_spawn_spec *spec, rn_spawned *out);

/// Blocks until the child has exec'd (returns 0) or reported a failure
/// (returns 1 and fills `report`). Closes `report_fd`. Returns -errno on a read error.
int rn_wait_exec(int report_fd, rn_report *report);

/// waitid(P_PIDFD). With `nohang`, returns 0 if the child has not exited yet.
/// Returns 1 when reaped (status filled as from waitpid), or -errno.
int rn_pidfd_wait(int pidfd, int nohang, int *code, int *status_kind);

/// pidfd_send_signal(2). Returns 0 or -errno.
int rn_pidfd_signal(int pidfd, int signal);

/// pidfd_open(2) (close-on-exec by the kernel). The descriptor, or -errno.
int rn_pidfd_open(int pid);

/// Opens a directory fd for clone3's CLONE_INTO_CGROUP (O_PATH would not do for every kernel).
int rn_open_directory(const char *path);

/// epoll helpers for the process reaper (not exposed by Swift's Glibc module map in every version).
int rn_epoll_create(void);
int rn_epoll_add(int epfd, int fd, uint64_t token);
int rn_epoll_del(int epfd, int fd);
/// Arms `fd` for one event of `writable` ? EPOLLOUT : EPOLLIN (EPOLLONESHOT), re-arming an
/// earlier registration or adding one. Returns 0 or -errno.
int rn_epoll_arm(int epfd, int fd, int writable, uint64_t token);
/// Waits for up to `max` events; fills `tokens`. Returns count, or -errno.
int rn_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms);
int rn_eventfd(void);
/// Names the calling thread (prctl PR_SET_NAME: at most 15 bytes are kept).
void rn_set_thread_name(const char *name);
/// sem_clockwait on CLOCK_MONOTONIC for up to `ns` (a wall-clock step cannot stretch it).
/// `sem` is a sem_t. 0 when posted, -errno (ETIMEDOUT) otherwise.
int rn_sem_wait_monotonic(void *sem, long long ns);
/// pipe2(O_CLOEXEC) (glibc hides it from Swift without _GNU_SOURCE). 0, or -errno.
int rn_pipe_cloexec(int fds[2]);

/// memfd_create, for exporting the seccomp BPF program from libseccomp.
int rn_memfd(const char *name);

/// A close-on-exec memfd holding `bytes`, mode 0555, sealed against any change: an executable
/// that exists on no filesystem and that nothing can alter once made. fd, or -errno.
int rn_sealed_executable_memfd(const char *name, const void *bytes, size_t length);
/// flock(LOCK_EX|LOCK_NB): 0 when taken, -errno otherwise.
int rn_try_lock(int fd);

/// 1 when `path` (not followed if a link) carries overlayfs's opaque mark, else 0.
int rn_overlay_opaque(const char *path);

/// A tmpfs attached to no mount tree (fsopen, fsconfig, fsmount with nosuid, nodev, noexec),
/// bounded in bytes and inodes, its root owned by uid:gid with `mode`. Returns the mount's
/// descriptor (close-on-exec) or -errno.
int rn_detached_tmpfs(uint64_t size_bytes, uint64_t inodes, uint32_t uid, uint32_t gid, uint32_t mode);

/// openat(dirfd, name, O_PATH|O_NOFOLLOW|O_CLOEXEC): a descriptor of `name` itself (a link
/// stays a link), which can be fstat'ed and, for a socket, connected through /proc/self/fd/N.
/// With dirfd AT_FDCWD and O_DIRECTORY when `directory`. Returns the fd or -errno.
int rn_open_path(int dirfd, const char *name, int directory);

/// umount2(path, MNT_DETACH). Returns 0 or -errno.
int rn_detach_mount(const char *path);

#ifdef __cplusplus
}
#endif
// The parked launcher of pooled sandboxes builds on the spawn spec above.
#include "rn_launcher.h"
#endif
