// Internal: system calls that never touch errno, for code that runs in the runner's memory
// without a thread of its own (the parked launcher, and a container's child cloned with
// CLONE_VM): glibc's wrappers would write errno into the TLS of whichever runner thread
// created the launcher. Each returns the result, or -errno.
#ifndef RN_RAW_SYSCALL_H
#define RN_RAW_SYSCALL_H

#include <sys/syscall.h>

#if defined(__x86_64__)
static inline long rn_raw6(long n, long a, long b, long c, long d, long e, long f) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
static inline long rn_raw6(long n, long a, long b, long c, long d, long e, long f) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    return x0;
}
#else
#error "fnrunner needs a raw system call for this architecture"
#endif

#define RAW0(n) rn_raw6((n), 0, 0, 0, 0, 0, 0)
#define RAW1(n, a) rn_raw6((n), (long)(a), 0, 0, 0, 0, 0)
#define RAW2(n, a, b) rn_raw6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define RAW3(n, a, b, c) rn_raw6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define RAW4(n, a, b, c, d) rn_raw6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define RAW5(n, a, b, c, d, e) rn_raw6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

#endif
