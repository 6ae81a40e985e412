// Thin wrappers for system calls that Swift's Glibc module does not expose
// (or exposes with types that do not import cleanly): pidfd wait/signal,
// epoll, eventfd, memfd, flock, umount2 with MNT_DETACH.
#define _GNU_SOURCE
#include "rn_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int rn_pidfd_wait(int pidfd, int nohang, int *code, int *status_kind) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc;
    do {
        rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | (nohang ? WNOHANG : 0));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -errno;
    if (info.si_pid == 0) return 0;
    if (info.si_code == CLD_EXITED) {
        *status_kind = 0;
        *code = info.si_status;
    } else {
        *status_kind = 1;  // killed or dumped: si_status is the signal
        *code = info.si_status;
    }
    return 1;
}

int rn_pidfd_signal(int pidfd, int signal) {
    if (syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0) < 0) return -errno;
    return 0;
}

int rn_open_directory(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int rn_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int rn_epoll_add(int epfd, int fd, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int rn_epoll_arm(int epfd, int fd, int writable, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (writable ? EPOLLOUT : EPOLLIN) | EPOLLONESHOT;
    ev.data.u64 = token;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
    if (errno != ENOENT) return -errno;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int rn_epoll_del(int epfd, int fd) {
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

int rn_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int n;
    do { n = epoll_wait(epfd, events, max, timeout_ms); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) tokens[i] = events[i].data.u64;
    return n;
}

void rn_set_thread_name(const char *name) { prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0); }

int rn_pidfd_open(int pid) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
}

int rn_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int rn_sem_wait_monotonic(void *sem, long long ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long total = (long long)ts.tv_nsec + ns % 1000000000LL;
    ts.tv_sec += (time_t)(ns / 1000000000LL + total / 1000000000LL);
    ts.tv_nsec = (long)(total % 1000000000LL);
    while (sem_clockwait((sem_t *)sem, CLOCK_MONOTONIC, &ts) != 0) {
        if (errno != EINTR) return -errno;
    }
    return 0;
}

int rn_memfd(const char *name) {
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int rn_sealed_executable_memfd(const char *name, const void *bytes, size_t length) {
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
    // MFD_EXEC: kernels with vm.memfd_noexec (6.3+) make memfds non-executable unless asked;
    // older kernels refuse the flag (EINVAL) and every memfd is executable there.
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -errno;
    const char *p = bytes;
    size_t left = length;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            return -e;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fchmod(fd, 0555) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int rn_overlay_opaque(const char *path) {
    char value = 0;
    return lgetxattr(path, "trusted.overlay.opaque", &value, 1) == 1 && value == 'y';
}

int rn_try_lock(int fd) {
    return flock(fd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0;
}

#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#define FSMOUNT_CLOEXEC 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#endif

int rn_detached_tmpfs(uint64_t size_bytes, uint64_t inodes, uint32_t uid, uint32_t gid, uint32_t mode) {
    int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0) return -errno;
    char value[4][32];
    snprintf(value[0], sizeof value[0], "%llu", (unsigned long long)size_bytes);
    snprintf(value[1], sizeof value[1], "%llu", (unsigned long long)inodes);
    snprintf(value[2], sizeof value[2], "%u", uid);
    snprintf(value[3], sizeof value[3], "%u", gid);
    char mode_text[16];
    snprintf(mode_text, sizeof mode_text, "%o", mode & 07777);
    const char *keys[5] = {"size", "nr_inodes", "uid", "gid", "mode"};
    const char *values[5] = {value[0], value[1], value[2], value[3], mode_text};
    int rc = 0;
    for (int i = 0; i < 5 && rc == 0; i++) {
        if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, keys[i], values[i], 0) < 0) rc = -errno;
    }
    if (rc == 0 && syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) rc = -errno;
    int mnt = -1;
    if (rc == 0) {
        mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        if (mnt < 0) rc = -errno;
    }
    close(fs);
    return rc < 0 ? rc : mnt;
}

int rn_open_path(int dirfd, const char *name, int directory) {
    int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
    return fd < 0 ? -errno : fd;
}

int rn_detach_mount(const char *path) {
    return umount2(path, MNT_DETACH) < 0 ? -errno : 0;
}

int rn_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}
