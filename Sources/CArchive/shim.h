#include <archive.h>
#include <archive_entry.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
