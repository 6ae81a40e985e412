// libarchive's API, loaded on first use (see forward.c) rather than linked, so commands that
// never unpack a layer (fnrunner run --rootfs) do not pay for loading it and its dependencies.
#include <archive.h>
#include <archive_entry.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
