// Shared inside CNetlink: work done on a thread that has entered a network namespace.
#ifndef RN_NETNS_RUN_H
#define RN_NETNS_RUN_H

/// Runs `work` on a short-lived thread that has entered the namespace `nsfd` (-1: runs it here).
int rn_netns_run(int nsfd, int (*work)(void *), void *argument);

/// Like rn_netns_run (-1: the caller's namespace), always on a short-lived thread whose
/// descriptor table is its own and holds only 0, 1 and 2. For libraries that put their
/// descriptors in an fd_set (libnftables waits for the kernel's acks with select), where a
/// number of 1024 or more aborts the whole process: on a busy node the runner's own numbers are
/// that high, the private table's are not. Whatever `work` opens is closed when the thread ends.
/// Returns `work`'s result, or -errno when the thread, the namespace or the table failed.
int rn_netns_run_with_low_descriptors(int nsfd, int (*work)(void *), void *argument);

#endif
