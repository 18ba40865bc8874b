/* Loading a shared library into ocirun, static or not. */
#ifndef OCIRUN_DLOPEN_H
#define OCIRUN_DLOPEN_H

#include "error.h"

#include <stddef.h>

/* dlopen (name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE). A static ocirun first
 * checks that the host's libc.so.6 is the glibc release it was linked with:
 * glibc loads libraries into a static program only then, and anything else
 * may crash inside the loader instead of failing. */
void *ocirun_dlopen (const char *name, ocirun_error_t *err);

/* The release ("2.36") of the glibc in the libc.so.6 at path, from the banner
 * every libc.so.6 carries ("... release version 2.36."). */
int ocirun_libc_release_of (const char *path, char *out, size_t len, ocirun_error_t *err);

#endif
