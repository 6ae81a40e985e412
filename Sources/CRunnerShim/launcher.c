// The parked launcher of a pooled sandbox (see rn_launcher.h).
//
// Rules for launcher_main(): it shares the runner's memory, so it must not touch anything
// of the runner's but its own control block. It makes raw system calls only (glibc's
// wrappers would write errno into the TLS of the runner thread that created it), takes no
// locks and never allocates. The container is cloned vfork-style (CLONE_VM|CLONE_VFORK) on
// a stack of its own in the launcher's mapping: no page tables are copied, the launcher
// sleeps until the child has exec'd, and rn_child() keeps to the same rules.
#define _GNU_SOURCE
#include "rn_launcher.h"
#include "child.h"
#include "raw_syscall.h"

#include <errno.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

enum {
    STATE_GONE = 0,      // written by the kernel when the launcher exits (CLONE_CHILD_CLEARTID)
    STATE_STARTING,
    STATE_PARKED,
    STATE_REQUEST,
    STATE_DISMISSED,
    STATE_ANSWERED,
};

struct rn_launcher {
    _Atomic int32_t state;      // also the CLONE_CHILD_CLEARTID word
    _Atomic int32_t answered;   // set before the state leaves REQUEST with an answer
    pid_t parent;
    pid_t pid;
    int pidfd;
    int with_network;
    const int *join_task_fds;   // v1 `tasks` files to write "0" into first (the runner's fds)
    size_t njoin_task_fds;
    int setup_error;            // errno of the failed setup step, or 0
    int setup_stage;            // RN_STAGE_* of that step
    // The request.
    const rn_spawn_spec *spec;
    int report_fd;
    // The answer.
    long result;                // the container's pid, or -errno
    int result_pidfd;
    // The mapping that holds this block and the launcher's stack.
    void *region;
    size_t region_size;
};

// The mapping: [guard page][the container's setup stack][the launcher's stack][control block].
enum { REGION_SIZE = 128 * 1024, GUARD_SIZE = 4096, CHILD_STACK_END = 64 * 1024 };

// clone3 with the child on its own stack: the child calls fn(arg), which never returns.
// (glibc has no clone3 wrapper that does this; syscall() would return into a frame the new
// stack does not have.)
__attribute__((noinline)) static long clone3_calling(struct clone_args *args, void (*fn)(void *), void *arg) {
#if defined(__x86_64__)
    long ret;
    register void (*r12)(void *) __asm__("r12") = fn;
    register void *r13 __asm__("r13") = arg;
    __asm__ volatile("syscall\n\t"
                     "testq %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "xorl %%ebp, %%ebp\n\t"
                     "movq %%r13, %%rdi\n\t"
                     "callq *%%r12\n\t"
                     "ud2\n"
                     "1:\n\t"
                     : "=a"(ret)
                     : "a"(SYS_clone3), "D"(args), "S"(sizeof *args), "r"(r12), "r"(r13)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = SYS_clone3;
    register long x0 __asm__("x0") = (long)args;
    register long x1 __asm__("x1") = (long)sizeof *args;
    register void (*x19)(void *) __asm__("x19") = fn;
    register void *x20 __asm__("x20") = arg;
    __asm__ volatile("svc 0\n\t"
                     "cbnz x0, 1f\n\t"
                     "mov x0, x20\n\t"
                     "mov x29, xzr\n\t"
                     "blr x19\n\t"
                     "brk #0\n"
                     "1:\n\t"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x19), "r"(x20)
                     : "x30", "memory");
    return x0;
#endif
}



// Shared (not FUTEX_PRIVATE) futex operations throughout: the kernel's wake at the launcher's
// exit (CLONE_CHILD_CLEARTID) is a shared one, and a private waiter would never see it.
static void raw_wake(_Atomic int32_t *word) { RAW3(SYS_futex, word, FUTEX_WAKE, 1); }
static void raw_wait(_Atomic int32_t *word, int32_t seen) { RAW4(SYS_futex, word, FUTEX_WAIT, seen, 0); }

__attribute__((noreturn)) static void raw_exit(int code) {
    for (;;) RAW1(SYS_exit, code);
}

static long raw_loopback_up(void) {
    long s = RAW3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return s;
    struct ifreq ifr;
    for (size_t i = 0; i < sizeof ifr; i++) ((volatile char *)&ifr)[i] = 0;
    ifr.ifr_name[0] = 'l';
    ifr.ifr_name[1] = 'o';
    long rc = RAW3(SYS_ioctl, s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = RAW3(SYS_ioctl, s, SIOCSIFFLAGS, &ifr);
    }
    RAW1(SYS_close, s);
    return rc;
}

// The container's first code: set up and exec, on its own stack in the runner's memory.
static void launched_child(void *arg) {
    rn_launcher *l = arg;
    rn_child(l->spec, l->report_fd, l->with_network);
}

__attribute__((noreturn)) static void setup_failed(rn_launcher *l, int stage, long rc) {
    l->setup_stage = stage;
    l->setup_error = (int)-rc;
    raw_exit(1);
}

static void launcher_main(void *arg) {
    rn_launcher *l = arg;
    // The v1 cgroups first (the fds are the runner's: the file table is shared).
    long joined = rn_join_cgroups(l->join_task_fds, l->njoin_task_fds);
    if (joined < 0) setup_failed(l, RN_STAGE_JOIN_CGROUP, joined);
    // Die with the runner (the thread that made us, which lives as long as the pool), and
    // catch the race where it died before the prctl.
    RAW2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
    if (RAW0(SYS_getppid) != l->parent) raw_exit(1);
    if (l->with_network) {
        long rc = RAW1(SYS_unshare, CLONE_NEWNET);
        if (rc == 0) rc = raw_loopback_up();
        if (rc < 0) setup_failed(l, RN_STAGE_LOOPBACK, rc);
    }
    atomic_store(&l->state, STATE_PARKED);
    raw_wake(&l->state);

    for (;;) {
        int32_t s = atomic_load(&l->state);
        if (s == STATE_REQUEST) break;
        if (s == STATE_DISMISSED) raw_exit(0);
        raw_wait(&l->state, s);
    }

    const rn_spawn_spec *spec = l->spec;
    struct clone_args args;
    for (size_t i = 0; i < sizeof args; i++) ((volatile char *)&args)[i] = 0;
    // CLONE_PARENT: the runner becomes the parent; the exit signal is then ours (SIGCHLD),
    // and clone3 requires exit_signal 0. CLONE_VM|CLONE_VFORK: no copy of the runner's page
    // tables (nor copy-on-write faults in the runner afterwards); we sleep until it exec'd.
    args.flags = CLONE_VM | CLONE_VFORK | CLONE_PARENT | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                 CLONE_PIDFD;
    if (spec->new_network && !l->with_network) args.flags |= CLONE_NEWNET;
    if (spec->cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)spec->cgroup_fd;
    }
    args.pidfd = (uint64_t)(uintptr_t)&l->result_pidfd;
    args.stack = (uint64_t)(uintptr_t)l->region + GUARD_SIZE;
    args.stack_size = CHILD_STACK_END - GUARD_SIZE;
    // Signals stay blocked (the launcher was born with all of them blocked); rn_child resets them.
    l->result = clone3_calling(&args, launched_child, l);
    atomic_store(&l->answered, 1);
    atomic_store(&l->state, STATE_ANSWERED);
    raw_wake(&l->state);
    raw_exit(0);
}

// Waits while the launcher's state is `from`; returns the state it moved to.
static int32_t wait_while(rn_launcher *l, int32_t from) {
    int32_t s;
    while ((s = atomic_load(&l->state)) == from) {
        long rc = syscall(SYS_futex, &l->state, FUTEX_WAIT, from, NULL, NULL, 0);
        (void)rc;
    }
    return s;
}

static void reap(rn_launcher *l) {
    siginfo_t info;
    while (syscall(SYS_waitid, P_PIDFD, l->pidfd, &info, WEXITED, NULL) < 0 && errno == EINTR) {}
}

int rn_launcher_start(int with_network, int cgroup_fd, const int *join_task_fds, size_t njoin_task_fds, rn_launcher **out,
                      int *stage) {
    *stage = RN_STAGE_CLONE;
    void *region = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (region == MAP_FAILED) return -errno;
    // A guard page below the stack: an overflow faults instead of writing into runner memory.
    if (mprotect(region, GUARD_SIZE, PROT_NONE) < 0) {
        int e = errno;
        munmap(region, REGION_SIZE);
        return -e;
    }
    uintptr_t top = (uintptr_t)region + REGION_SIZE - sizeof(rn_launcher);
    top &= ~(uintptr_t)63;
    rn_launcher *l = (rn_launcher *)top;
    memset(l, 0, sizeof *l);
    atomic_store(&l->state, STATE_STARTING);
    l->parent = getpid();
    l->pidfd = -1;
    l->report_fd = -1;
    l->result_pidfd = -1;
    l->with_network = with_network;
    l->join_task_fds = join_task_fds;
    l->njoin_task_fds = njoin_task_fds;
    l->region = region;
    l->region_size = REGION_SIZE;
    uintptr_t stack_top = (top - 64) & ~(uintptr_t)15;

    // Born with every signal blocked, so no runner handler ever runs on the launcher.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int pidfd = -1;
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_VM | CLONE_FILES | CLONE_PIDFD | CLONE_CHILD_CLEARTID;
    if (cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
    }
    args.pidfd = (uint64_t)(uintptr_t)&pidfd;
    args.child_tid = (uint64_t)(uintptr_t)&l->state;
    args.exit_signal = SIGCHLD;
    args.stack = (uint64_t)((uintptr_t)region + CHILD_STACK_END);
    args.stack_size = stack_top - ((uintptr_t)region + CHILD_STACK_END);
    long pid = clone3_calling(&args, launcher_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        munmap(region, REGION_SIZE);
        return (int)pid;
    }
    l->pid = pid;
    l->pidfd = pidfd;

    if (wait_while(l, STATE_STARTING) != STATE_PARKED) {
        reap(l);
        close(l->pidfd);
        int e = l->setup_error;
        if (e != 0) *stage = l->setup_stage;
        munmap(region, REGION_SIZE);
        return -(e != 0 ? e : ECHILD);
    }
    // Parked: it has joined its cgroups. Defensive: nothing reads the caller's descriptors again.
    l->join_task_fds = NULL;
    l->njoin_task_fds = 0;
    *out = l;
    return 0;
}

pid_t rn_launcher_pid(const rn_launcher *l) { return l->pid; }
int rn_launcher_pidfd(const rn_launcher *l) { return l->pidfd; }

int rn_launcher_launch(rn_launcher *l, const rn_spawn_spec *spec, rn_spawned *out) {
    int report[2];
    int rc = rn_spawn_pipe(report);
    if (rc < 0) return rc;
    l->spec = spec;
    l->report_fd = report[1];
    int32_t parked = STATE_PARKED;
    int gone = !atomic_compare_exchange_strong(&l->state, &parked, STATE_REQUEST);
    if (!gone) {
        syscall(SYS_futex, &l->state, FUTEX_WAKE, 1, NULL, NULL, 0);
        wait_while(l, STATE_REQUEST);
        gone = !atomic_load(&l->answered);
    }
    close(report[1]);
    if (gone || l->result < 0) {
        close(report[0]);
        return gone ? -ECHILD : (int)l->result;
    }
    out->pid = (pid_t)l->result;
    out->pidfd = l->result_pidfd;
    out->report_fd = report[0];
    return 0;
}

int rn_launcher_dismiss(rn_launcher *l) {
    int32_t parked = STATE_PARKED;
    if (!atomic_compare_exchange_strong(&l->state, &parked, STATE_DISMISSED)) return -ECHILD;
    syscall(SYS_futex, &l->state, FUTEX_WAKE, 1, NULL, NULL, 0);
    return 0;
}

void rn_launcher_free(rn_launcher *l) { munmap(l->region, l->region_size); }
