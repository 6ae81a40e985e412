// Work done on a short-lived thread inside a network namespace (see netns_run.h).
#define _GNU_SOURCE
#include "netns_run.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

typedef struct {
    int nsfd;
    int private_descriptors;
    int (*work)(void *);
    void *argument;
    int result;
} rn_netns_job;

/// Closes every descriptor above 2 in the calling thread's (already private) table, as listed
/// in /proc: for kernels or seccomp profiles without close_range.
static int close_listed_descriptors(void) {
    DIR *dir = opendir("/proc/thread-self/fd");
    if (!dir) return -errno;
    int own = dirfd(dir);
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        char *end;
        long fd = strtol(entry->d_name, &end, 10);
        if (*end == 0 && end != entry->d_name && fd > 2 && fd != own) close((int)fd);
    }
    closedir(dir);
    return 0;
}

/// Gives the calling thread a descriptor table of its own holding only 0, 1 and 2; the rest of
/// the process keeps its table untouched.
static int keep_only_standard_descriptors(void) {
    if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_UNSHARE) == 0) return 0;
    // Before Linux 5.9 (ENOSYS, or EINVAL for the flag), or a seccomp profile that predates
    // close_range (EPERM): copy the table, then close the copy's descriptors.
    if (errno != ENOSYS && errno != EINVAL && errno != EPERM) return -errno;
    if (unshare(CLONE_FILES) != 0) return -errno;
    return close_listed_descriptors();
}

static void *netns_job_main(void *p) {
    rn_netns_job *job = p;
    if (job->nsfd >= 0 && setns(job->nsfd, CLONE_NEWNET) != 0) {
        job->result = -errno;
        return NULL;
    }
    if (job->private_descriptors) {
        int rc = keep_only_standard_descriptors();
        if (rc != 0) {
            job->result = rc;
            return NULL;
        }
    }
    job->result = job->work(job->argument);
    return NULL;
}

static int run_on_thread(rn_netns_job *job) {
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, netns_job_main, job);
    if (rc != 0) return -rc;
    pthread_join(thread, NULL);
    return job->result;
}

/// The caller's thread never changes namespace, so no other work can run in the wrong one.
int rn_netns_run(int nsfd, int (*work)(void *), void *argument) {
    if (nsfd < 0) return work(argument);
    rn_netns_job job = {.nsfd = nsfd, .private_descriptors = 0, .work = work, .argument = argument, .result = -EIO};
    return run_on_thread(&job);
}

int rn_netns_run_with_low_descriptors(int nsfd, int (*work)(void *), void *argument) {
    rn_netns_job job = {.nsfd = nsfd, .private_descriptors = 1, .work = work, .argument = argument, .result = -EIO};
    return run_on_thread(&job);
}
