// rn_launcher: a parked launcher process for pooled sandboxes.
//
// Why: a start's cgroups and network namespace do not depend on the function. A launcher
// is made ahead of time, off the call path, born in (or joining) a pooled cgroup set and
// given its own network namespace; the container it later clones inherits all of that,
// so a start creates no cgroup and no network namespace.
//
// The launcher shares the runner's memory and file table (clone3 CLONE_VM|CLONE_FILES),
// so the runner hands it an `rn_spawn_spec` by pointer and the fds it made after the
// launcher was born. It clones the container with CLONE_PARENT, so the runner is the
// container's parent (its reaper works unchanged), answers, and exits: one launch each.
// Until then it runs only raw system calls on a stack of its own.
#ifndef RN_LAUNCHER_H
#define RN_LAUNCHER_H

#include "rn_spawn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rn_launcher rn_launcher;

/// Creates a launcher in its cgroups and waits until it is parked: born in the v2 cgroup
/// `cgroup_fd` (CLONE_INTO_CGROUP; -1 for none), it first writes "0" into each v1 `tasks`
/// file in `join_task_fds` (a thread moving itself waits for no RCU grace period, see
/// rn_spawn_spec), then, with `with_network`, enters a network namespace of its own and brings
/// loopback up. Returns 0 or -errno (`*stage` names the step: RN_STAGE_CLONE,
/// RN_STAGE_JOIN_CGROUP or RN_STAGE_LOOPBACK; -ECHILD with RN_STAGE_CLONE: it ended before it
/// parked without saying why). `join_task_fds` and its descriptors must stay valid until it
/// returns.
int rn_launcher_start(int with_network, int cgroup_fd, const int *join_task_fds, size_t njoin_task_fds, rn_launcher **out,
                      int *stage);

/// The launcher's pid and pidfd (for its network namespace and reaping it).
pid_t rn_launcher_pid(const rn_launcher *l);
int rn_launcher_pidfd(const rn_launcher *l);

/// Has the launcher clone the container described by `spec` (the launcher's network
/// namespace replaces CLONE_NEWNET; `spec->cgroup_fd` is still honoured). Fills `out` as
/// rn_spawn does. Returns 0, -errno when clone3 failed, or -ECHILD when the launcher was
/// gone (killed) before it could answer. The launcher exits either way.
int rn_launcher_launch(rn_launcher *l, const rn_spawn_spec *spec, rn_spawned *out);

/// Asks a parked launcher to exit. Returns 0, or -ECHILD if it was no longer parked.
int rn_launcher_dismiss(rn_launcher *l);

/// Releases the launcher's memory. Only after its process has been reaped; closes nothing
/// else (the pidfd stays the caller's).
void rn_launcher_free(rn_launcher *l);

#ifdef __cplusplus
}
#endif
#endif
