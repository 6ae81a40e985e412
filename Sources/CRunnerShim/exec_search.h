// Internal: execvpe without malloc or errno, shared by the container child (child.c) and the
// container's init process (init/init.c), which both exec a program named by the image.
#ifndef RN_EXEC_SEARCH_H
#define RN_EXEC_SEARCH_H

#include "raw_syscall.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

// Execs `file` (searched in `path_env` when it has no '/' and a search path is given). Returns
// only on failure, with the errno execvp would leave: EACCES wins over ENOENT, and errors other
// than "not here" end the search.
static inline long rn_exec_search(const char *file, char *const *argv, char *const *envp, const char *path_env) {
    if (strchr(file, '/') != NULL || path_env == NULL) return -RAW3(SYS_execve, file, argv, envp);
    char buf[4096];
    size_t flen = strlen(file);
    int saw_eacces = 0;
    const char *p = path_env;
    for (;;) {
        const char *end = strchr(p, ':');
        size_t dlen = end ? (size_t)(end - p) : strlen(p);
        if (dlen == 0) { buf[0] = '.'; dlen = 1; } else if (dlen < sizeof buf) memcpy(buf, p, dlen);
        if (dlen + 1 + flen + 1 <= sizeof buf) {
            buf[dlen] = '/';
            memcpy(buf + dlen + 1, file, flen + 1);
            long rc = RAW3(SYS_execve, buf, argv, envp);
            if (rc == -EACCES) saw_eacces = 1;
            else if (rc != -ENOENT && rc != -ENOTDIR && rc != -ESTALE && rc != -ENODEV && rc != -ETIMEDOUT)
                return -rc;
        }
        if (end == NULL) break;
        p = end + 1;
    }
    return saw_eacces ? EACCES : ENOENT;
}

#endif
