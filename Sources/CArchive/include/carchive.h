// libarchive's API, loaded on first use (see forward.c) rather than linked, so commands that
// never unpack a layer (fnrunner run --rootfs) do not pay for loading it and its dependencies.
#include <archive.h>
#include <archive_entry.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>

// The forwarders (forward.c): call these, never libarchive's own names.
struct archive * fnr_archive_read_new(void);
int fnr_archive_read_support_format_tar(struct archive *a);
int fnr_archive_read_support_format_gnutar(struct archive *a);
int fnr_archive_read_support_format_raw(struct archive *a);
int fnr_archive_read_open(struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl);
int fnr_archive_read_open_filename(struct archive *a, const char *f, size_t b);
int fnr_archive_read_next_header(struct archive *a, struct archive_entry **e);
la_ssize_t fnr_archive_read_data(struct archive *a, void *b, size_t s);
int fnr_archive_read_data_block(struct archive *a, const void **b, size_t *s, la_int64_t *o);
int fnr_archive_read_free(struct archive *a);
struct archive * fnr_archive_write_disk_new(void);
int fnr_archive_write_disk_set_options(struct archive *a, int f);
int fnr_archive_write_header(struct archive *a, struct archive_entry *e);
la_ssize_t fnr_archive_write_data_block(struct archive *a, const void *b, size_t s, la_int64_t o);
int fnr_archive_write_finish_entry(struct archive *a);
int fnr_archive_write_close(struct archive *a);
int fnr_archive_write_free(struct archive *a);
const char * fnr_archive_error_string(struct archive *a);
int fnr_archive_errno(struct archive *a);
const char * fnr_archive_entry_pathname(struct archive_entry *e);
const char * fnr_archive_entry_hardlink(struct archive_entry *e);
__LA_MODE_T fnr_archive_entry_filetype(struct archive_entry *e);
__LA_MODE_T fnr_archive_entry_perm(struct archive_entry *e);
la_int64_t fnr_archive_entry_uid(struct archive_entry *e);
la_int64_t fnr_archive_entry_gid(struct archive_entry *e);
la_int64_t fnr_archive_entry_size(struct archive_entry *e);
void fnr_archive_entry_set_pathname(struct archive_entry *e, const char *p);
void fnr_archive_entry_set_hardlink(struct archive_entry *e, const char *p);
int fnr_archive_read_support_filter_gzip(struct archive *a);
int fnr_archive_read_support_filter_zstd(struct archive *a);
int fnr_archive_read_support_filter_none(struct archive *a);
void fnr_archive_entry_set_size(struct archive_entry *e, la_int64_t s);
int fnr_archive_entry_xattr_reset(struct archive_entry *e);
int fnr_archive_entry_xattr_next(struct archive_entry *e, const char **n, const void **v, size_t *s);
void fnr_archive_entry_xattr_clear(struct archive_entry *e);
void fnr_archive_entry_xattr_add_entry(struct archive_entry *e, const char *n, const void *v, size_t s);
