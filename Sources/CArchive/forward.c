// Forwarders for the libarchive functions fnrunner uses: the library is dlopen'ed on first use.
// If it is missing, constructors return NULL and the rest report ARCHIVE_FATAL, which the Swift
// callers turn into errors ("archive_read_new failed").
#define _GNU_SOURCE
#include "carchive.h"

#include <dlfcn.h>
#include <stddef.h>

static void *library(void) {
    static void *handle;
    void *h = __atomic_load_n(&handle, __ATOMIC_ACQUIRE);
    if (!h) {
        h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
        __atomic_store_n(&handle, h, __ATOMIC_RELEASE);
    }
    return h;
}

static void *symbol(const char *name) {
    void *h = library();
    return h ? dlsym(h, name) : NULL;
}

struct archive * archive_read_new(void) {
    static struct archive * (*fp)(void);
    if (!fp) fp = (struct archive * (*)(void))symbol("archive_read_new");
    if (!fp) return 0;
    return fp();
}

int archive_read_support_format_tar(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_read_support_format_tar");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}

int archive_read_support_format_gnutar(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_read_support_format_gnutar");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}

int archive_read_support_format_raw(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_read_support_format_raw");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}


int archive_read_open(struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl) {
    static int (*fp)(struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl);
    if (!fp) fp = (int (*)(struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl))symbol("archive_read_open");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a, c, o, r, cl);
}

int archive_read_open_filename(struct archive *a, const char *f, size_t b) {
    static int (*fp)(struct archive *a, const char *f, size_t b);
    if (!fp) fp = (int (*)(struct archive *a, const char *f, size_t b))symbol("archive_read_open_filename");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a, f, b);
}

int archive_read_next_header(struct archive *a, struct archive_entry **e) {
    static int (*fp)(struct archive *a, struct archive_entry **e);
    if (!fp) fp = (int (*)(struct archive *a, struct archive_entry **e))symbol("archive_read_next_header");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a, e);
}

la_ssize_t archive_read_data(struct archive *a, void *b, size_t s) {
    static la_ssize_t (*fp)(struct archive *a, void *b, size_t s);
    if (!fp) fp = (la_ssize_t (*)(struct archive *a, void *b, size_t s))symbol("archive_read_data");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a, b, s);
}

int archive_read_data_block(struct archive *a, const void **b, size_t *s, la_int64_t *o) {
    static int (*fp)(struct archive *a, const void **b, size_t *s, la_int64_t *o);
    if (!fp) fp = (int (*)(struct archive *a, const void **b, size_t *s, la_int64_t *o))symbol("archive_read_data_block");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a, b, s, o);
}

int archive_read_free(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_read_free");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}

struct archive * archive_write_disk_new(void) {
    static struct archive * (*fp)(void);
    if (!fp) fp = (struct archive * (*)(void))symbol("archive_write_disk_new");
    if (!fp) return 0;
    return fp();
}

int archive_write_disk_set_options(struct archive *a, int f) {
    static int (*fp)(struct archive *a, int f);
    if (!fp) fp = (int (*)(struct archive *a, int f))symbol("archive_write_disk_set_options");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a, f);
}

int archive_write_header(struct archive *a, struct archive_entry *e) {
    static int (*fp)(struct archive *a, struct archive_entry *e);
    if (!fp) fp = (int (*)(struct archive *a, struct archive_entry *e))symbol("archive_write_header");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a, e);
}

la_ssize_t archive_write_data_block(struct archive *a, const void *b, size_t s, la_int64_t o) {
    static la_ssize_t (*fp)(struct archive *a, const void *b, size_t s, la_int64_t o);
    if (!fp) fp = (la_ssize_t (*)(struct archive *a, const void *b, size_t s, la_int64_t o))symbol("archive_write_data_block");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a, b, s, o);
}

int archive_write_finish_entry(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_write_finish_entry");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}

int archive_write_close(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_write_close");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}

int archive_write_free(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_write_free");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}

const char * archive_error_string(struct archive *a) {
    static const char * (*fp)(struct archive *a);
    if (!fp) fp = (const char * (*)(struct archive *a))symbol("archive_error_string");
    if (!fp) return 0;
    return fp(a);
}

int archive_errno(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_errno");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}

const char * archive_entry_pathname(struct archive_entry *e) {
    static const char * (*fp)(struct archive_entry *e);
    if (!fp) fp = (const char * (*)(struct archive_entry *e))symbol("archive_entry_pathname");
    if (!fp) return 0;
    return fp(e);
}

const char * archive_entry_hardlink(struct archive_entry *e) {
    static const char * (*fp)(struct archive_entry *e);
    if (!fp) fp = (const char * (*)(struct archive_entry *e))symbol("archive_entry_hardlink");
    if (!fp) return 0;
    return fp(e);
}

__LA_MODE_T archive_entry_filetype(struct archive_entry *e) {
    static __LA_MODE_T (*fp)(struct archive_entry *e);
    if (!fp) fp = (__LA_MODE_T (*)(struct archive_entry *e))symbol("archive_entry_filetype");
    if (!fp) return 0;
    return fp(e);
}

__LA_MODE_T archive_entry_perm(struct archive_entry *e) {
    static __LA_MODE_T (*fp)(struct archive_entry *e);
    if (!fp) fp = (__LA_MODE_T (*)(struct archive_entry *e))symbol("archive_entry_perm");
    if (!fp) return 0;
    return fp(e);
}

la_int64_t archive_entry_uid(struct archive_entry *e) {
    static la_int64_t (*fp)(struct archive_entry *e);
    if (!fp) fp = (la_int64_t (*)(struct archive_entry *e))symbol("archive_entry_uid");
    if (!fp) return 0;
    return fp(e);
}

la_int64_t archive_entry_gid(struct archive_entry *e) {
    static la_int64_t (*fp)(struct archive_entry *e);
    if (!fp) fp = (la_int64_t (*)(struct archive_entry *e))symbol("archive_entry_gid");
    if (!fp) return 0;
    return fp(e);
}

la_int64_t archive_entry_size(struct archive_entry *e) {
    static la_int64_t (*fp)(struct archive_entry *e);
    if (!fp) fp = (la_int64_t (*)(struct archive_entry *e))symbol("archive_entry_size");
    if (!fp) return 0;
    return fp(e);
}

void archive_entry_set_pathname(struct archive_entry *e, const char *p) {
    static void (*fp)(struct archive_entry *e, const char *p);
    if (!fp) fp = (void (*)(struct archive_entry *e, const char *p))symbol("archive_entry_set_pathname");
    if (!fp) return;
    fp(e, p);
}

void archive_entry_set_hardlink(struct archive_entry *e, const char *p) {
    static void (*fp)(struct archive_entry *e, const char *p);
    if (!fp) fp = (void (*)(struct archive_entry *e, const char *p))symbol("archive_entry_set_hardlink");
    if (!fp) return;
    fp(e, p);
}

int archive_read_support_filter_gzip(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_read_support_filter_gzip");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}

int archive_read_support_filter_zstd(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_read_support_filter_zstd");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}

int archive_read_support_filter_none(struct archive *a) {
    static int (*fp)(struct archive *a);
    if (!fp) fp = (int (*)(struct archive *a))symbol("archive_read_support_filter_none");
    if (!fp) return ARCHIVE_FATAL;
    return fp(a);
}

void archive_entry_set_size(struct archive_entry *e, la_int64_t s) {
    static void (*fp)(struct archive_entry *e, la_int64_t s);
    if (!fp) fp = (void (*)(struct archive_entry *e, la_int64_t s))symbol("archive_entry_set_size");
    if (!fp) return;
    fp(e, s);
}

int archive_entry_xattr_reset(struct archive_entry *e) {
    static int (*fp)(struct archive_entry *e);
    if (!fp) fp = (int (*)(struct archive_entry *e))symbol("archive_entry_xattr_reset");
    if (!fp) return 0;
    return fp(e);
}

int archive_entry_xattr_next(struct archive_entry *e, const char **n, const void **v, size_t *s) {
    static int (*fp)(struct archive_entry *e, const char **n, const void **v, size_t *s);
    if (!fp) fp = (int (*)(struct archive_entry *e, const char **n, const void **v, size_t *s))symbol("archive_entry_xattr_next");
    if (!fp) return ARCHIVE_FATAL;
    return fp(e, n, v, s);
}

void archive_entry_xattr_clear(struct archive_entry *e) {
    static void (*fp)(struct archive_entry *e);
    if (!fp) fp = (void (*)(struct archive_entry *e))symbol("archive_entry_xattr_clear");
    if (!fp) return;
    fp(e);
}

void archive_entry_xattr_add_entry(struct archive_entry *e, const char *n, const void *v, size_t s) {
    static void (*fp)(struct archive_entry *e, const char *n, const void *v, size_t s);
    if (!fp) fp = (void (*)(struct archive_entry *e, const char *n, const void *v, size_t s))symbol("archive_entry_xattr_add_entry");
    if (!fp) return;
    fp(e, n, v, s);
}
