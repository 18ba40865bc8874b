#include "config.h"
#include "util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void
ocirun_strv_free (char **v)
{
  if (v == NULL)
    return;
  for (char **p = v; *p; p++)
    free (*p);
  free (v);
}

static void __attribute__ ((noreturn)) oom (void)
{
  static const char msg[] = "ocirun: out of memory\n";
  /* Nothing more can be done if even this write fails. */
  if (write (STDERR_FILENO, msg, sizeof msg - 1) < 0)
    {
    }
  abort ();
}

void *
xmalloc0 (size_t size)
{
  void *p = calloc (1, size ? size : 1);
  if (p == NULL)
    oom ();
  return p;
}

void *
xrealloc (void *p, size_t size)
{
  void *r = realloc (p, size ? size : 1);
  if (r == NULL)
    oom ();
  return r;
}

char *
xstrdup (const char *s)
{
  char *r;
  if (s == NULL)
    return NULL;
  r = strdup (s);
  if (r == NULL)
    oom ();
  return r;
}

int
xasprintf (char **out, const char *fmt, ...)
{
  va_list ap;
  int r;
  va_start (ap, fmt);
  r = vasprintf (out, fmt, ap);
  va_end (ap);
  if (r < 0)
    oom ();
  return r;
}

ssize_t
ocirun_write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  size_t done = 0;
  while (done < len)
    {
      ssize_t r = write (fd, p + done, len - done);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      done += r;
    }
  return done;
}

ssize_t
ocirun_read_all (int fd, void *buf, size_t len)
{
  char *p = buf;
  size_t done = 0;
  while (done < len)
    {
      ssize_t r = read (fd, p + done, len - done);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      if (r == 0)
        break;
      done += r;
    }
  return done;
}

static int
read_fd (int fd, const char *path, char **out, size_t *len, ocirun_error_t *err)
{
  size_t cap = 4096, n = 0;
  /* Not zeroed: only the n bytes read and the terminator are used. */
  cleanup_free char *buf = xrealloc (NULL, cap + 1);

  for (;;)
    {
      ssize_t r = read (fd, buf + n, cap - n);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return ocirun_make_error (err, errno, "read `%s`", path);
        }
      if (r == 0)
        break;
      n += r;
      if (n == cap)
        {
          cap *= 2;
          buf = xrealloc (buf, cap + 1);
        }
    }
  buf[n] = '\0';
  if (len)
    *len = n;
  *out = steal_pointer (&buf);
  return 0;
}

int
ocirun_read_file_at (int dirfd, const char *path, char **out, size_t *len, ocirun_error_t *err)
{
  cleanup_close int fd = openat (dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return ocirun_make_error (err, errno, "open `%s`", path);
  return read_fd (fd, path, out, len, err);
}

int
ocirun_read_file (const char *path, char **out, size_t *len, ocirun_error_t *err)
{
  return ocirun_read_file_at (AT_FDCWD, path, out, len, err);
}

int
ocirun_write_file_atomic_at (int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                             ocirun_error_t *err)
{
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = -1;

  xasprintf (&tmp, ".%s.tmp", name);
  fd = openat (dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return ocirun_make_error (err, errno, "create `%s`", tmp);
  if (ocirun_write_all (fd, data, len) < 0)
    {
      int e = errno;
      unlinkat (dirfd, tmp, 0);
      return ocirun_make_error (err, e, "write `%s`", tmp);
    }
  if (renameat (dirfd, tmp, dirfd, name) < 0)
    {
      int e = errno;
      unlinkat (dirfd, tmp, 0);
      return ocirun_make_error (err, e, "rename `%s` to `%s`", tmp, name);
    }
  return 0;
}

int
ocirun_write_file_at (int dirfd, const char *path, const void *data, size_t len, ocirun_error_t *err)
{
  cleanup_close int fd = openat (dirfd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return ocirun_make_error (err, errno, "open `%s`", path);
  if (ocirun_write_all (fd, data, len) < 0)
    return ocirun_make_error (err, errno, "write `%s`", path);
  return 0;
}

int
ocirun_mkdir_p (const char *path, mode_t mode, ocirun_error_t *err)
{
  cleanup_free char *copy = xstrdup (path);
  char *p = copy;

  while (*p == '/')
    p++;
  for (;;)
    {
      char *slash = strchr (p, '/');
      if (slash)
        *slash = '\0';
      if (mkdir (copy, mode) < 0 && errno != EEXIST)
        return ocirun_make_error (err, errno, "mkdir `%s`", copy);
      if (slash == NULL)
        break;
      *slash = '/';
      p = slash + 1;
      while (*p == '/')
        p++;
      if (*p == '\0')
        break;
    }
  return 0;
}

uint64_t
ocirun_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
