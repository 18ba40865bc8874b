#include "config.h"
#include "dlopen.h"
#include "util.h"

#include <ctype.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <string.h>

#define BANNER "release version "

/* "2.36." ends the banner's sentence: digits and inner dots only. */
static int
parse_release (const char *p, const char *end, char *out, size_t len)
{
  size_t i = 0;

  while (p + i < end && i + 1 < len
         && (isdigit ((unsigned char)p[i]) || (p[i] == '.' && p + i + 1 < end && isdigit ((unsigned char)p[i + 1]))))
    {
      out[i] = p[i];
      i++;
    }
  out[i] = '\0';
  return i > 0 ? 0 : -1;
}

int
ocirun_libc_release_of (const char *path, char *out, size_t len, ocirun_error_t *err)
{
  /* Each read keeps the tail of the previous one, so a banner that
   * straddles two reads is still found whole. */
  enum
  {
    CHUNK = 16 * 1024,
    KEEP = 64
  };
  const size_t blen = strlen (BANNER);
  cleanup_close int fd = -1;
  cleanup_free char *buf = malloc (CHUNK + KEEP);
  size_t have = 0;

  if (buf == NULL)
    return ocirun_make_error (err, ENOMEM, "read `%s`", path);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ocirun_errno_error (err, "open `%s`", path);
  for (;;)
    {
      ssize_t n = read (fd, buf + have, CHUNK);
      size_t keep;
      char *p;

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return ocirun_errno_error (err, "read `%s`", path);
      have += (size_t)n;
      p = memmem (buf, have, BANNER, blen);
      if (p && (n == 0 || (size_t)(buf + have - p) >= KEEP))
        {
          if (parse_release (p + blen, buf + have, out, len) < 0)
            return ocirun_make_error (err, -ENOEXEC, "`%s`: no version after `%s`", path, BANNER);
          return 0;
        }
      if (n == 0)
        return ocirun_make_error (err, -ENOEXEC, "`%s` has no glibc version banner", path);
      keep = p ? (size_t)(buf + have - p) : (have < KEEP ? have : KEEP);
      memmove (buf, buf + have - keep, keep);
      have = keep;
    }
}

void *
ocirun_dlopen (const char *name, ocirun_error_t *err)
{
  void *h;

#ifdef OCIRUN_STATIC_BINARY
  char host[32];

  if (ocirun_libc_release_of (OCIRUN_LIBC_SO, host, sizeof host, err) < 0)
    {
      ocirun_error_prefix (err, "load %s into this static ocirun", name);
      return NULL;
    }
  if (strcmp (host, gnu_get_libc_version ()) != 0)
    {
      ocirun_make_error (err, -ELIBBAD,
                         "load %s: this ocirun is statically linked with glibc %s, and `%s` is glibc %s; glibc "
                         "loads a library into a static program only with its own release: rebuild ocirun "
                         "(or configure it with --disable-static-binary)",
                         name, gnu_get_libc_version (), OCIRUN_LIBC_SO, host);
      return NULL;
    }
#endif
  h = dlopen (name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (h == NULL)
    ocirun_make_error (err, -ENOENT, "cannot load %s: %s", name, dlerror ());
  return h;
}
