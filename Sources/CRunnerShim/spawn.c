// The parent half of the container start: clone3 into fresh namespaces with the
// report pipe; the child's setup is in child.c.
#define _GNU_SOURCE
#include "rn_spawn.h"
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

// Moves a new fd to 3 or above, so that the child's stdio shuffle never clobbers it.
static int above_stdio(int fd) {
    if (fd >= 3) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    close(fd);
    errno = saved;
    return moved;
}

static int spawn_pipe(int p[2]) {
    if (pipe2(p, O_CLOEXEC) < 0) return -errno;
    p[0] = above_stdio(p[0]);
    p[1] = above_stdio(p[1]);
    if (p[0] < 0 || p[1] < 0) {
        int e = errno;
        if (p[0] >= 0) close(p[0]);
        if (p[1] >= 0) close(p[1]);
        return -e;
    }
    return 0;
}

int rn_spawn_pipe(int report[2]) { return spawn_pipe(report); }

int rn_spawn(const rn_spawn_spec *spec, rn_spawned *out) {
    int report[2];
    int rc = rn_spawn_pipe(report);
    if (rc < 0) return rc;

    int pidfd = -1;
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD;
    if (spec->new_network) args.flags |= CLONE_NEWNET;
    if (spec->cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)spec->cgroup_fd;
    }
    args.pidfd = (uint64_t)(uintptr_t)&pidfd;
    args.exit_signal = SIGCHLD;

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) rn_child(spec, report[1], 0);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        return -saved;
    }
    out->pid = (pid_t)pid;
    out->pidfd = pidfd;
    out->report_fd = report[0];
    return 0;
}

int rn_wait_exec(int report_fd, rn_report *report) {
    size_t have = 0;
    char *buf = (char *)report;
    while (have < sizeof *report) {
        ssize_t n = read(report_fd, buf + have, sizeof *report - have);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(report_fd);
            return -e;
        }
        if (n == 0) break;
        have += (size_t)n;
    }
    close(report_fd);
    return have == sizeof *report ? 1 : 0;
}
