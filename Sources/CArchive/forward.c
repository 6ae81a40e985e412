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

// Declares `resolved`, the function `name` returning `ret` with `params`: looked up once and
// cached with acquire/release atomics (first calls may race from several threads).
#define RESOLVE(ret, params, name)                                \
    static ret(*cache) params;                                    \
    ret(*resolved) params = __atomic_load_n(&cache, __ATOMIC_ACQUIRE); \
    if (!resolved) {                                              \
        resolved = (ret(*) params)symbol(name);                   \
        __atomic_store_n(&cache, resolved, __ATOMIC_RELEASE);     \
    }

struct archive * fnr_archive_read_new(void) {
    RESOLVE(struct archive *, (void), "archive_read_new")
    if (!resolved) return 0;
    return resolved();
}

int fnr_archive_read_support_format_tar(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_read_support_format_tar")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_read_support_format_gnutar(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_read_support_format_gnutar")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_read_support_format_raw(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_read_support_format_raw")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}


int fnr_archive_read_open(struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl) {
    RESOLVE(int, (struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl), "archive_read_open")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, c, o, r, cl);
}

int fnr_archive_read_open_filename(struct archive *a, const char *f, size_t b) {
    RESOLVE(int, (struct archive *a, const char *f, size_t b), "archive_read_open_filename")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, f, b);
}

int fnr_archive_read_next_header(struct archive *a, struct archive_entry **e) {
    RESOLVE(int, (struct archive *a, struct archive_entry **e), "archive_read_next_header")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, e);
}

la_ssize_t fnr_archive_read_data(struct archive *a, void *b, size_t s) {
    RESOLVE(la_ssize_t, (struct archive *a, void *b, size_t s), "archive_read_data")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, b, s);
}

int fnr_archive_read_data_block(struct archive *a, const void **b, size_t *s, la_int64_t *o) {
    RESOLVE(int, (struct archive *a, const void **b, size_t *s, la_int64_t *o), "archive_read_data_block")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, b, s, o);
}

int fnr_archive_read_free(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_read_free")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

struct archive * fnr_archive_write_disk_new(void) {
    RESOLVE(struct archive *, (void), "archive_write_disk_new")
    if (!resolved) return 0;
    return resolved();
}

int fnr_archive_write_disk_set_options(struct archive *a, int f) {
    RESOLVE(int, (struct archive *a, int f), "archive_write_disk_set_options")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, f);
}

int fnr_archive_write_header(struct archive *a, struct archive_entry *e) {
    RESOLVE(int, (struct archive *a, struct archive_entry *e), "archive_write_header")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, e);
}

la_ssize_t fnr_archive_write_data_block(struct archive *a, const void *b, size_t s, la_int64_t o) {
    RESOLVE(la_ssize_t, (struct archive *a, const void *b, size_t s, la_int64_t o), "archive_write_data_block")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a, b, s, o);
}

int fnr_archive_write_finish_entry(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_write_finish_entry")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_write_close(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_write_close")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_write_free(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_write_free")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

const char * fnr_archive_error_string(struct archive *a) {
    RESOLVE(const char *, (struct archive *a), "archive_error_string")
    if (!resolved) return 0;
    return resolved(a);
}

int fnr_archive_errno(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_errno")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

const char * fnr_archive_entry_pathname(struct archive_entry *e) {
    RESOLVE(const char *, (struct archive_entry *e), "archive_entry_pathname")
    if (!resolved) return 0;
    return resolved(e);
}

const char * fnr_archive_entry_hardlink(struct archive_entry *e) {
    RESOLVE(const char *, (struct archive_entry *e), "archive_entry_hardlink")
    if (!resolved) return 0;
    return resolved(e);
}

__LA_MODE_T fnr_archive_entry_filetype(struct archive_entry *e) {
    RESOLVE(__LA_MODE_T, (struct archive_entry *e), "archive_entry_filetype")
    if (!resolved) return 0;
    return resolved(e);
}

__LA_MODE_T fnr_archive_entry_perm(struct archive_entry *e) {
    RESOLVE(__LA_MODE_T, (struct archive_entry *e), "archive_entry_perm")
    if (!resolved) return 0;
    return resolved(e);
}

la_int64_t fnr_archive_entry_uid(struct archive_entry *e) {
    RESOLVE(la_int64_t, (struct archive_entry *e), "archive_entry_uid")
    if (!resolved) return 0;
    return resolved(e);
}

la_int64_t fnr_archive_entry_gid(struct archive_entry *e) {
    RESOLVE(la_int64_t, (struct archive_entry *e), "archive_entry_gid")
    if (!resolved) return 0;
    return resolved(e);
}

la_int64_t fnr_archive_entry_size(struct archive_entry *e) {
    RESOLVE(la_int64_t, (struct archive_entry *e), "archive_entry_size")
    if (!resolved) return 0;
    return resolved(e);
}

void fnr_archive_entry_set_pathname(struct archive_entry *e, const char *p) {
    RESOLVE(void, (struct archive_entry *e, const char *p), "archive_entry_set_pathname")
    if (!resolved) return;
    resolved(e, p);
}

void fnr_archive_entry_set_hardlink(struct archive_entry *e, const char *p) {
    RESOLVE(void, (struct archive_entry *e, const char *p), "archive_entry_set_hardlink")
    if (!resolved) return;
    resolved(e, p);
}

int fnr_archive_read_support_filter_gzip(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_read_support_filter_gzip")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_read_support_filter_zstd(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_read_support_filter_zstd")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

int fnr_archive_read_support_filter_none(struct archive *a) {
    RESOLVE(int, (struct archive *a), "archive_read_support_filter_none")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(a);
}

void fnr_archive_entry_set_size(struct archive_entry *e, la_int64_t s) {
    RESOLVE(void, (struct archive_entry *e, la_int64_t s), "archive_entry_set_size")
    if (!resolved) return;
    resolved(e, s);
}

int fnr_archive_entry_xattr_reset(struct archive_entry *e) {
    RESOLVE(int, (struct archive_entry *e), "archive_entry_xattr_reset")
    if (!resolved) return 0;
    return resolved(e);
}

int fnr_archive_entry_xattr_next(struct archive_entry *e, const char **n, const void **v, size_t *s) {
    RESOLVE(int, (struct archive_entry *e, const char **n, const void **v, size_t *s), "archive_entry_xattr_next")
    if (!resolved) return ARCHIVE_FATAL;
    return resolved(e, n, v, s);
}

void fnr_archive_entry_xattr_clear(struct archive_entry *e) {
    RESOLVE(void, (struct archive_entry *e), "archive_entry_xattr_clear")
    if (!resolved) return;
    resolved(e);
}

void fnr_archive_entry_xattr_add_entry(struct archive_entry *e, const char *n, const void *v, size_t s) {
    RESOLVE(void, (struct archive_entry *e, const char *n, const void *v, size_t s), "archive_entry_xattr_add_entry")
    if (!resolved) return;
    resolved(e, n, v, s);
}
