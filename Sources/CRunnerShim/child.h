// Internal: the child's entry point after clone3 (see child.c).
#ifndef RN_CHILD_H
#define RN_CHILD_H
#include "rn_spawn.h"

/// Sets up the container from `spec` and execs; never returns. Failures go to `report_fd`.
/// `network_ready`: the network namespace was inherited from a launcher with loopback up.
__attribute__((noreturn)) void rn_child(const rn_spawn_spec *spec, int report_fd, int ack_fd, int network_ready);

/// The report pipe, and the ack pipe when `spec->wait_for_attach` (else both ack ends are -1).
/// Every end is close-on-exec and at 3 or above (the child's stdio shuffle must never clobber
/// them). 0 or -errno, with nothing left open.
int rn_spawn_pipes(const rn_spawn_spec *spec, int report[2], int ack[2]);

#endif
