// fnrunner-init: PID 1 of every container, as docker-init is under Fn.
//
// A function's orphaned children are re-parented to PID 1 of its pid namespace. When the
// function itself is PID 1 and never waits for them, they stay zombies, and in a hot container
// that lives for hours they add up against the pids limit. This init starts the function as
// its one child, reaps every process that ends, passes on the signals it is sent, and exits
// with the function's status (128 + the signal when a signal ended it), which ends the pid
// namespace and everything still in it.
//
// Built by the InitImage plugin as a static executable without libc (raw system calls only);
// the runner holds it in a sealed memfd and the container's child execs it with execveat, so
// no file of the host or of the image is involved. It runs with the function's credentials,
// seccomp filter and limits, after every setup step: it can do nothing the function cannot.
//
// argv: [0] a name, [1] the start report pipe's fd, [2] the search PATH ("" for none),
// [3...] the function's argv. A failed exec of the function is written to the report pipe
// exactly as the runner's child writes it; the pipe reaches EOF when the function has exec'd.
#include "../raw_syscall.h"
#include "../exec_search.h"
#include "../include/rn_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

// The few libc string functions exec_search.h and the compiler may call.
size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n] != '\0') n++;
    return n;
}
char *strchr(const char *s, int c) {
    for (;; s++) {
        if (*s == (char)c) return (char *)s;
        if (*s == '\0') return NULL;
    }
}
void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n-- > 0) *d++ = *s++;
    return dst;
}
void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n-- > 0) *d++ = (unsigned char)c;
    return dst;
}

__attribute__((noreturn)) static void exit_with(int code) {
    for (;;) RAW1(SYS_exit_group, code);
}

static int parse_fd(const char *s) {
    int fd = 0;
    if (*s == '\0') return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || fd > 100000000) return -1;
        fd = fd * 10 + (*s - '0');
    }
    return fd;
}

static void report(int fd, int stage, long error) {
    rn_report r = {.stage = stage, .error = (int32_t)error};
    RAW3(SYS_write, fd, &r, sizeof r);
}

// Kernel layout of siginfo_t: only the signal number is read.
struct init_siginfo {
    int32_t signo;
    int32_t pad[31];
};

__attribute__((noreturn, used)) void init_main(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    if (argc < 4) exit_with(127);
    int report_fd = parse_fd(argv[1]);
    const char *path = argv[2][0] != '\0' ? argv[2] : NULL;
    if (report_fd < 3) exit_with(127);

    uint64_t all = ~0ULL;
    uint64_t none = 0;
    RAW4(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof all);

    long child = RAW5(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (child == 0) {
        RAW4(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
        RAW3(SYS_fcntl, report_fd, F_SETFD, FD_CLOEXEC);
        long err = rn_exec_search(argv[3], argv + 3, envp, path);
        report(report_fd, RN_STAGE_EXEC, err);
        exit_with(127);
    }
    if (child < 0) {
        report(report_fd, RN_STAGE_INIT, -child);
        exit_with(127);
    }
    // The function holds what it needs (the report pipe among it); this process keeps nothing.
    RAW3(SYS_close_range, 0, ~0U, 0);

    for (;;) {
        struct init_siginfo info;
        long sig = RAW4(SYS_rt_sigtimedwait, &all, &info, NULL, sizeof all);
        if (sig < 0) continue;  // EINTR
        if (sig != SIGCHLD) {
            RAW2(SYS_kill, child, sig);
            continue;
        }
        for (;;) {
            int status = 0;
            long pid = RAW4(SYS_wait4, -1, &status, WNOHANG, NULL);
            if (pid <= 0) break;
            if (pid != child) continue;
            if ((status & 0x7f) == 0) exit_with((status >> 8) & 0xff);
            exit_with(128 + (status & 0x7f));
        }
    }
}

// The entry point: hands the initial stack (argc, argv, envp) to init_main.
#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call init_main\n hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n mov x29, #0\n mov x30, #0\n mov x0, sp\n and sp, x0, #-16\n bl init_main\n brk #0\n");
#else
#error "fnrunner-init needs an entry point for this architecture"
#endif
