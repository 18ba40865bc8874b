/* Path resolution inside the container's rootfs. A config controls every
 * symlink in the rootfs, so the runtime never joins strings and opens the
 * result: it either lets the kernel confine the lookup (openat2
 * RESOLVE_IN_ROOT) or walks one component at a time with O_NOFOLLOW,
 * resolving symlinks itself as if the rootfs were `/`. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mounts.h"
#include "setup.h"
#include "util.h"

/* Linux's own limit on symlinks followed during one lookup. */
#define MAX_SYMLINKS 40

/* The walk keeps one O_PATH fd per directory level so `..` can go back up
 * without ever asking the kernel for the parent of the root. */
struct walk
{
  int rootfd;
  int *stack; /* stack[0..n-1]: fds owned by the walk (the root is not) */
  size_t n, cap;
};

static int
walk_top (struct walk *w)
{
  return w->n ? w->stack[w->n - 1] : w->rootfd;
}

static void
walk_push (struct walk *w, int fd)
{
  if (w->n == w->cap)
    {
      w->cap = w->cap ? w->cap * 2 : 16;
      w->stack = xrealloc (w->stack, w->cap * sizeof (int));
    }
  w->stack[w->n++] = fd;
}

static void
walk_pop (struct walk *w)
{
  /* `..` at the root stays at the root, like chroot. */
  if (w->n)
    close (w->stack[--w->n]);
}

static void
walk_reset (struct walk *w)
{
  while (w->n)
    walk_pop (w);
}

static void
walk_free (struct walk *w)
{
  walk_reset (w);
  free (w->stack);
  w->stack = NULL;
}

/* Reads the target of the symlink `fd` refers to (an O_PATH|O_NOFOLLOW fd). */
static char *
read_link_fd (int fd)
{
  char buf[PATH_MAX];
  ssize_t len = readlinkat (fd, "", buf, sizeof (buf) - 1);
  if (len < 0)
    return NULL;
  buf[len] = '\0';
  return xstrdup (buf);
}

/* Walks `path` below w->rootfd. On success the walk's top is the directory
 * holding the last component and *last receives that component (never a
 * symlink to follow: it is missing, not a symlink, or a symlink that must
 * not be followed because follow_last is false). A path naming the root or
 * ending in `.`/`..` yields last = ".". With `create`, missing intermediate
 * directories are made with `mode`. */
static int
walk_to_parent (struct walk *w, const char *path, bool follow_last, bool create, mode_t mode, char **last,
                ocirun_error_t *err)
{
  cleanup_free char *todo = xstrdup (path);
  int links = 0;

  for (;;)
    {
      char *p = todo;
      char *comp, *rest;

      while (*p == '/')
        p++;
      if (*p == '\0')
        {
          *last = xstrdup (".");
          return 0;
        }
      comp = p;
      rest = strchr (p, '/');
      if (rest)
        {
          *rest++ = '\0';
          while (*rest == '/')
            rest++;
          if (*rest == '\0')
            rest = NULL;
        }

      if (strcmp (comp, ".") == 0 || strcmp (comp, "..") == 0)
        {
          if (comp[1] == '.')
            walk_pop (w);
          if (rest == NULL)
            {
              *last = xstrdup (".");
              return 0;
            }
          memmove (todo, rest, strlen (rest) + 1);
          continue;
        }

      cleanup_close int fd = openat (walk_top (w), comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT && rest && create)
        {
          if (mkdirat (walk_top (w), comp, mode) < 0 && errno != EEXIST)
            return ocirun_make_error (err, errno, "mkdir `%s`", comp);
          fd = openat (walk_top (w), comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        }
      if (fd < 0)
        {
          if (errno == ENOENT && rest == NULL)
            {
              *last = xstrdup (comp);
              return 0;
            }
          return ocirun_make_error (err, errno, "open `%s`", comp);
        }

      struct stat st;
      if (fstatat (fd, "", &st, AT_EMPTY_PATH) < 0)
        return ocirun_make_error (err, errno, "stat `%s`", comp);

      if (S_ISLNK (st.st_mode) && (rest || follow_last))
        {
          cleanup_free char *target = NULL;
          cleanup_free char *next = NULL;

          if (++links > MAX_SYMLINKS)
            return ocirun_make_error (err, ELOOP, "resolve `%s`", path);
          target = read_link_fd (fd);
          if (target == NULL)
            return ocirun_make_error (err, errno, "readlink `%s`", comp);
          /* An absolute target starts again from the rootfs, not the host. */
          if (target[0] == '/')
            walk_reset (w);
          if (xasprintf (&next, "%s/%s", target, rest ? rest : "") < 0)
            return ocirun_make_error (err, ENOMEM, "resolve `%s`", path);
          free (todo);
          todo = steal_pointer (&next);
          continue;
        }

      if (rest == NULL)
        {
          *last = xstrdup (comp);
          return 0;
        }
      if (!S_ISDIR (st.st_mode))
        return ocirun_make_error (err, ENOTDIR, "open `%s`", comp);
      walk_push (w, steal_fd (&fd));
      memmove (todo, rest, strlen (rest) + 1);
    }
}

static int
open_in_root_walk (int rootfs_fd, const char *path, int flags, mode_t mode, ocirun_error_t *err)
{
  struct walk w = { .rootfd = rootfs_fd };
  cleanup_free char *last = NULL;
  int ret;

  ret = walk_to_parent (&w, path, !(flags & O_NOFOLLOW), false, 0, &last, err);
  if (ret < 0)
    {
      walk_free (&w);
      return ret;
    }
  /* The last component was checked not to be a symlink to follow; O_NOFOLLOW
   * makes sure nothing swapped in meanwhile is followed either. */
  ret = openat (walk_top (&w), last, flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (ret < 0)
    ret = ocirun_make_error (err, errno, "open `%s`", path);
  walk_free (&w);
  return ret;
}

int
ocirun_open_in_root (int rootfs_fd, const char *path, int flags, mode_t mode, ocirun_error_t *err)
{
  struct open_how how = {
    .flags = (unsigned)(flags | O_CLOEXEC),
    .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  int fd;

  fd = (int)TEMP_FAILURE_RETRY_INT (syscall (SYS_openat2, rootfs_fd, path, &how, sizeof (how)));
  if (fd >= 0)
    return fd;
  /* EAGAIN: a rename raced the lookup; EXDEV should not happen in root mode.
   * ENOSYS/E2BIG: old kernel. Only those fall back to the walk. */
  if (errno == ENOSYS || errno == E2BIG || errno == EAGAIN)
    return open_in_root_walk (rootfs_fd, path, flags, mode, err);
  return ocirun_make_error (err, errno, "open `%s`", path);
}

int
ocirun_open_in_root_walk (int rootfs_fd, const char *path, int flags, mode_t mode, ocirun_error_t *err)
{
  return open_in_root_walk (rootfs_fd, path, flags, mode, err);
}

int
ocirun_mkdir_in_root (int rootfs_fd, const char *path, mode_t mode, bool file, ocirun_error_t *err)
{
  struct walk w = { .rootfd = rootfs_fd };
  cleanup_free char *last = NULL;
  int ret, fd;

  ret = walk_to_parent (&w, path, true, true, 0755, &last, err);
  if (ret < 0)
    goto out;

  fd = openat (walk_top (&w), last, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    {
      if (file)
        {
          int wfd = openat (walk_top (&w), last, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
          if (wfd < 0 && errno != EEXIST)
            {
              ret = ocirun_make_error (err, errno, "create `%s`", path);
              goto out;
            }
          if (wfd >= 0)
            close (wfd);
        }
      else if (mkdirat (walk_top (&w), last, mode) < 0 && errno != EEXIST)
        {
          ret = ocirun_make_error (err, errno, "mkdir `%s`", path);
          goto out;
        }
      fd = openat (walk_top (&w), last, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
  if (fd < 0)
    {
      ret = ocirun_make_error (err, errno, "open `%s`", path);
      goto out;
    }
  if (!file)
    {
      struct stat st;
      if (fstatat (fd, "", &st, AT_EMPTY_PATH) < 0)
        {
          ret = ocirun_make_error (err, errno, "stat `%s`", path);
          close (fd);
          goto out;
        }
      if (!S_ISDIR (st.st_mode))
        {
          close (fd);
          ret = ocirun_make_error (err, ENOTDIR, "mkdir `%s`", path);
          goto out;
        }
    }
  ret = fd;
out:
  walk_free (&w);
  return ret;
}
