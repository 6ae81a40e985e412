// Internal: the child's entry point after clone3 (see child.c).
#ifndef RN_CHILD_H
#define RN_CHILD_H
#include "rn_spawn.h"

/// Sets up the container from `spec` and execs; never returns. Failures go to `report_fd`.
/// `network_ready`: the network namespace was inherited from a launcher with loopback up.
__attribute__((noreturn)) void rn_child(const rn_spawn_spec *spec, int report_fd, int network_ready);

/// The report pipe. Both ends are close-on-exec and at 3 or above (the child's stdio shuffle
/// must never clobber them). 0 or -errno, with nothing left open.
int rn_spawn_pipe(int report[2]);

/// Writes "0" (the caller itself) into each v1 `tasks` file in `fds`: the move into its cgroups
/// that waits for no RCU grace period (see rn_spawn_spec.join_task_fds). Raw system calls only,
/// for rn_child and the launcher. 0, or -errno of the first write that failed.
long rn_join_cgroups(const int *fds, size_t n);

#endif
