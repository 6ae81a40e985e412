// Internal: the child's entry point after clone3 (see child.c).
#ifndef RN_CHILD_H
#define RN_CHILD_H
#include "rn_spawn.h"

/// Sets up the container from `spec` and execs; never returns. Failures go to `report_fd`.
__attribute__((noreturn)) void rn_child(const rn_spawn_spec *spec, int report_fd, int ack_fd);

#endif
