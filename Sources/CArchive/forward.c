// Forwarders for the libarchive functions fnrunner uses: the library is dlopen'ed on first use.
// They are named fnr_archive_*: a forwarder named like libarchive's own symbol would stand in for
// it for any other library in the process that links libarchive. Each caches its pointer
// atomically, so concurrent first calls from several threads are safe.
// If it is missing, constructors return NULL and the rest report ARCHIVE_FATAL, which the Swift
// callers turn into errors ("archive_read_new failed").
#define _GNU_SOURCE
#include "carchive.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

static void *handle;

static void load(void) { handle = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL); }

// Loaded once, whichever thread asks first (pthread_once orders the store before every return).
static void *library(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, load);
    return handle;
}

static void *symbol(const char *name) {
    void *h = library();
    return h ? dlsym(h, name) : NULL;
}

struct archive * fnr_archive_read_new(void) {
    static struct archive * (*fp)(void);
    struct archive * (*resolved)(void) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (struct archive * (*)(void))symbol("archive_read_new");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved();
}

int fnr_archive_read_support_format_tar(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_read_support_format_tar");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_read_support_format_gnutar(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_read_support_format_gnutar");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_read_support_format_raw(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_read_support_format_raw");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}


int fnr_archive_read_open(struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl) {
    static int (*fp)(struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl);
    int (*resolved)(struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl))symbol("archive_read_open");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, c, o, r, cl);
}

int fnr_archive_read_open_filename(struct archive *a, const char *f, size_t b) {
    static int (*fp)(struct archive *a, const char *f, size_t b);
    int (*resolved)(struct archive *a, const char *f, size_t b) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a, const char *f, size_t b))symbol("archive_read_open_filename");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, f, b);
}

int fnr_archive_read_next_header(struct archive *a, struct archive_entry **e) {
    static int (*fp)(struct archive *a, struct archive_entry **e);
    int (*resolved)(struct archive *a, struct archive_entry **e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a, struct archive_entry **e))symbol("archive_read_next_header");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, e);
}

la_ssize_t fnr_archive_read_data(struct archive *a, void *b, size_t s) {
    static la_ssize_t (*fp)(struct archive *a, void *b, size_t s);
    la_ssize_t (*resolved)(struct archive *a, void *b, size_t s) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (la_ssize_t (*)(struct archive *a, void *b, size_t s))symbol("archive_read_data");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, b, s);
}

int fnr_archive_read_data_block(struct archive *a, const void **b, size_t *s, la_int64_t *o) {
    static int (*fp)(struct archive *a, const void **b, size_t *s, la_int64_t *o);
    int (*resolved)(struct archive *a, const void **b, size_t *s, la_int64_t *o) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a, const void **b, size_t *s, la_int64_t *o))symbol("archive_read_data_block");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, b, s, o);
}

int fnr_archive_read_free(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_read_free");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

struct archive * fnr_archive_write_disk_new(void) {
    static struct archive * (*fp)(void);
    struct archive * (*resolved)(void) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (struct archive * (*)(void))symbol("archive_write_disk_new");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved();
}

int fnr_archive_write_disk_set_options(struct archive *a, int f) {
    static int (*fp)(struct archive *a, int f);
    int (*resolved)(struct archive *a, int f) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a, int f))symbol("archive_write_disk_set_options");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, f);
}

int fnr_archive_write_header(struct archive *a, struct archive_entry *e) {
    static int (*fp)(struct archive *a, struct archive_entry *e);
    int (*resolved)(struct archive *a, struct archive_entry *e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a, struct archive_entry *e))symbol("archive_write_header");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, e);
}

la_ssize_t fnr_archive_write_data_block(struct archive *a, const void *b, size_t s, la_int64_t o) {
    static la_ssize_t (*fp)(struct archive *a, const void *b, size_t s, la_int64_t o);
    la_ssize_t (*resolved)(struct archive *a, const void *b, size_t s, la_int64_t o) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (la_ssize_t (*)(struct archive *a, const void *b, size_t s, la_int64_t o))symbol("archive_write_data_block");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, b, s, o);
}

int fnr_archive_write_finish_entry(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_write_finish_entry");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_write_close(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_write_close");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_write_free(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_write_free");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

const char * fnr_archive_error_string(struct archive *a) {
    static const char * (*fp)(struct archive *a);
    const char * (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (const char * (*)(struct archive *a))symbol("archive_error_string");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved(a);
}

int fnr_archive_errno(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_errno");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

const char * fnr_archive_entry_pathname(struct archive_entry *e) {
    static const char * (*fp)(struct archive_entry *e);
    const char * (*resolved)(struct archive_entry *e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (const char * (*)(struct archive_entry *e))symbol("archive_entry_pathname");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved(e);
}

const char * fnr_archive_entry_hardlink(struct archive_entry *e) {
    static const char * (*fp)(struct archive_entry *e);
    const char * (*resolved)(struct archive_entry *e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (const char * (*)(struct archive_entry *e))symbol("archive_entry_hardlink");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved(e);
}

__LA_MODE_T fnr_archive_entry_filetype(struct archive_entry *e) {
    static __LA_MODE_T (*fp)(struct archive_entry *e);
    __LA_MODE_T (*resolved)(struct archive_entry *e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (__LA_MODE_T (*)(struct archive_entry *e))symbol("archive_entry_filetype");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved(e);
}

__LA_MODE_T fnr_archive_entry_perm(struct archive_entry *e) {
    static __LA_MODE_T (*fp)(struct archive_entry *e);
    __LA_MODE_T (*resolved)(struct archive_entry *e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (__LA_MODE_T (*)(struct archive_entry *e))symbol("archive_entry_perm");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved(e);
}

la_int64_t fnr_archive_entry_uid(struct archive_entry *e) {
    static la_int64_t (*fp)(struct archive_entry *e);
    la_int64_t (*resolved)(struct archive_entry *e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (la_int64_t (*)(struct archive_entry *e))symbol("archive_entry_uid");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved(e);
}

la_int64_t fnr_archive_entry_gid(struct archive_entry *e) {
    static la_int64_t (*fp)(struct archive_entry *e);
    la_int64_t (*resolved)(struct archive_entry *e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (la_int64_t (*)(struct archive_entry *e))symbol("archive_entry_gid");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved(e);
}

la_int64_t fnr_archive_entry_size(struct archive_entry *e) {
    static la_int64_t (*fp)(struct archive_entry *e);
    la_int64_t (*resolved)(struct archive_entry *e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (la_int64_t (*)(struct archive_entry *e))symbol("archive_entry_size");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved(e);
}

void fnr_archive_entry_set_pathname(struct archive_entry *e, const char *p) {
    static void (*fp)(struct archive_entry *e, const char *p);
    void (*resolved)(struct archive_entry *e, const char *p) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (void (*)(struct archive_entry *e, const char *p))symbol("archive_entry_set_pathname");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return;
    resolved(e, p);
}

void fnr_archive_entry_set_hardlink(struct archive_entry *e, const char *p) {
    static void (*fp)(struct archive_entry *e, const char *p);
    void (*resolved)(struct archive_entry *e, const char *p) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (void (*)(struct archive_entry *e, const char *p))symbol("archive_entry_set_hardlink");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return;
    resolved(e, p);
}

int fnr_archive_read_support_filter_gzip(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_read_support_filter_gzip");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_read_support_filter_zstd(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_read_support_filter_zstd");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_read_support_filter_none(struct archive *a) {
    static int (*fp)(struct archive *a);
    int (*resolved)(struct archive *a) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive *a))symbol("archive_read_support_filter_none");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

void fnr_archive_entry_set_size(struct archive_entry *e, la_int64_t s) {
    static void (*fp)(struct archive_entry *e, la_int64_t s);
    void (*resolved)(struct archive_entry *e, la_int64_t s) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (void (*)(struct archive_entry *e, la_int64_t s))symbol("archive_entry_set_size");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return;
    resolved(e, s);
}

int fnr_archive_entry_xattr_reset(struct archive_entry *e) {
    static int (*fp)(struct archive_entry *e);
    int (*resolved)(struct archive_entry *e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive_entry *e))symbol("archive_entry_xattr_reset");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return 0;
    return resolved(e);
}

int fnr_archive_entry_xattr_next(struct archive_entry *e, const char **n, const void **v, size_t *s) {
    static int (*fp)(struct archive_entry *e, const char **n, const void **v, size_t *s);
    int (*resolved)(struct archive_entry *e, const char **n, const void **v, size_t *s) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (int (*)(struct archive_entry *e, const char **n, const void **v, size_t *s))symbol("archive_entry_xattr_next");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(e, n, v, s);
}

void fnr_archive_entry_xattr_clear(struct archive_entry *e) {
    static void (*fp)(struct archive_entry *e);
    void (*resolved)(struct archive_entry *e) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (void (*)(struct archive_entry *e))symbol("archive_entry_xattr_clear");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return;
    resolved(e);
}

void fnr_archive_entry_xattr_add_entry(struct archive_entry *e, const char *n, const void *v, size_t s) {
    static void (*fp)(struct archive_entry *e, const char *n, const void *v, size_t s);
    void (*resolved)(struct archive_entry *e, const char *n, const void *v, size_t s) = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
    if (!resolved) {
        resolved = (void (*)(struct archive_entry *e, const char *n, const void *v, size_t s))symbol("archive_entry_xattr_add_entry");
        __atomic_store_n(&fp, resolved, __ATOMIC_RELEASE);
    }
    if (!resolved) return;
    resolved(e, n, v, s);
}
