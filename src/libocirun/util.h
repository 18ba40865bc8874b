/* Small helpers every room of the library uses: cleanup attributes (so every
 * early return frees what the function owns) and checked syscall wrappers. */
#ifndef OCIRUN_UTIL_H
#define OCIRUN_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "error.h"

static inline void
ocirun_freep (void *p)
{
  free (*(void **)p);
}

static inline void
ocirun_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
  *fd = -1;
}

static inline void
ocirun_fclosep (FILE **f)
{
  if (*f)
    fclose (*f);
  *f = NULL;
}

static inline void
ocirun_closedirp (DIR **d)
{
  if (*d)
    closedir (*d);
  *d = NULL;
}

/* Frees a NULL-terminated array of strings. */
void ocirun_strv_free (char **v);
static inline void
ocirun_strv_freep (char ***v)
{
  ocirun_strv_free (*v);
  *v = NULL;
}

#define cleanup_free __attribute__ ((cleanup (ocirun_freep)))
#define cleanup_close __attribute__ ((cleanup (ocirun_closep)))
#define cleanup_fclose __attribute__ ((cleanup (ocirun_fclosep)))
#define cleanup_dir __attribute__ ((cleanup (ocirun_closedirp)))
#define cleanup_strv __attribute__ ((cleanup (ocirun_strv_freep)))

/* Hands ownership out of a cleanup variable: `return steal_pointer (&p);` */
static inline void *
ocirun_steal_pointer (void *pp)
{
  void **p = (void **)pp;
  void *ret = *p;
  *p = NULL;
  return ret;
}
#define steal_pointer(pp) ocirun_steal_pointer (pp)

static inline int
steal_fd (int *fd)
{
  int ret = *fd;
  *fd = -1;
  return ret;
}

/* Retries on EINTR; the syscall must return -1 and set errno on failure. */
#define TEMP_FAILURE_RETRY_INT(expr)                                                                                   \
  ({                                                                                                                   \
    long _r;                                                                                                           \
    do                                                                                                                 \
      _r = (long)(expr);                                                                                               \
    while (_r == -1 && errno == EINTR);                                                                                \
    _r;                                                                                                                \
  })

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t ocirun_now_ms (void);
void *xmalloc0 (size_t size); /* aborts on OOM: allocations are tiny */
void *xrealloc (void *p, size_t size);
char *xstrdup (const char *s);
int xasprintf (char **out, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Whole-buffer I/O that handles short reads/writes and EINTR. */
ssize_t ocirun_write_all (int fd, const void *buf, size_t len);
ssize_t ocirun_read_all (int fd, void *buf, size_t len);

/* Reads a whole file (by path, or by fd at dirfd) into a NUL-terminated buffer. */
int ocirun_read_file (const char *path, char **out, size_t *len, ocirun_error_t *err);
int ocirun_read_file_at (int dirfd, const char *path, char **out, size_t *len, ocirun_error_t *err);
/* Writes a file atomically (temp file + rename in the same directory). */
int ocirun_write_file_atomic_at (int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                                 ocirun_error_t *err);
/* Writes data to an existing file (for /proc and cgroup knobs). */
int ocirun_write_file_at (int dirfd, const char *path, const void *data, size_t len, ocirun_error_t *err);

/* Creates every missing directory of path (like mkdir -p). */
int ocirun_mkdir_p (const char *path, mode_t mode, ocirun_error_t *err);

#endif
