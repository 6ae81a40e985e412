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
