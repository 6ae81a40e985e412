// Shared inside CNetlink: work done on a thread that has entered a network namespace.
#ifndef RN_NETNS_RUN_H
#define RN_NETNS_RUN_H

/// Runs `work` on a short-lived thread that has entered the namespace `nsfd` (-1: runs it here).
int rn_netns_run(int nsfd, int (*work)(void *), void *argument);

#endif
