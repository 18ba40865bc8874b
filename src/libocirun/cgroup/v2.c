#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "../util.h"

static void
sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

/* Lets the children of one level use every controller that level has. A
 * controller the kernel refuses here (rootless, or a parent that did not
 * delegate it) is not an error yet: the knob that needs it will be missing,
 * and setting it says so. */
static void
enable_controllers (int fd)
{
  cleanup_free char *avail = NULL;
  cleanup_free char *all = NULL;
  cleanup_close int wfd = -1;
  char *save = NULL;
  size_t len = 0;

  if (ocirun_read_file_at (fd, "cgroup.controllers", &avail, NULL, NULL) < 0)
    return;
  for (char *c = strtok_r (avail, " \n", &save); c; c = strtok_r (NULL, " \n", &save))
    {
      size_t n = strlen (c);
      all = xrealloc (all, len + n + 3);
      if (len)
        all[len++] = ' ';
      all[len++] = '+';
      memcpy (all + len, c, n + 1);
      len += n;
    }
  if (len == 0)
    return;
  wfd = openat (fd, "cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
  if (wfd < 0)
    return;
  if (write (wfd, all, len) >= 0)
    return;
  /* One by one, so a refused controller does not take the others down. */
  save = NULL;
  for (char *c = strtok_r (all, " ", &save); c; c = strtok_r (NULL, " ", &save))
    if (write (wfd, c, strlen (c)) < 0)
      continue;
}

int
ocirun_cgroup_v2_prepare (struct ocirun_cgroup_dir *d, ocirun_error_t *err)
{
  cleanup_free char *copy = NULL;
  cleanup_close int cur = -1;
  char *save = NULL, *name, *next_name;

  cur = open (d->h.mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cur < 0)
    return ocirun_make_error (err, errno, "open `%s`", d->h.mountpoint);
  copy = xstrdup (d->path);
  name = strtok_r (copy, "/", &save);
  /* Every level above the leaf, the root included; the leaf itself keeps
   * its processes and so cannot hand controllers further down. */
  while (name)
    {
      int next;
      enable_controllers (cur);
      next_name = strtok_r (NULL, "/", &save);
      if (next_name == NULL)
        break;
      next = openat (cur, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      if (next < 0)
        return ocirun_make_error (err, errno, "open `%s` below `%s`", name, d->h.mountpoint);
      close (cur);
      cur = next;
      name = next_name;
    }
  return 0;
}

/* cgroup.events says whether the kernel has finished: "frozen 0|1". */
static int
events_frozen (struct ocirun_cgroup_dir *d, bool *frozen, ocirun_error_t *err)
{
  cleanup_free char *buf = NULL;
  char *p;
  int ret;

  ret = ocirun_cgroup_read (d, "cgroup.events", &buf, err);
  if (ret < 0)
    return ret;
  for (p = buf; p; p = strchr (p, '\n'))
    {
      if (*p == '\n')
        p++;
      if (strncmp (p, "frozen ", 7) == 0)
        {
          *frozen = p[7] == '1';
          return 0;
        }
    }
  *frozen = false;
  return 0;
}

int
ocirun_cgroup_v2_freeze (struct ocirun_cgroup_dir *d, bool frozen, ocirun_error_t *err)
{
  bool now = !frozen;
  int ret;

  if (!ocirun_cgroup_has_file (d, "cgroup.freeze"))
    {
      if (!frozen)
        return 0;
      if (d->fd < 0)
        return ocirun_make_error (err, ENOENT, "cannot freeze: the cgroup `%s` does not exist", d->abs);
      return ocirun_make_error (err, ENOTSUP, "cannot freeze `%s`: no cgroup.freeze (kernel older than 5.2)", d->abs);
    }
  ret = ocirun_cgroup_write (d, "cgroup freezer", "cgroup.freeze", frozen ? "1" : "0", NULL, err);
  if (ret < 0)
    return ret;
  for (int i = 0; i < 5000; i++)
    {
      ret = events_frozen (d, &now, err);
      if (ret < 0)
        break;
      if (now == frozen)
        return 0;
      sleep_ms (1);
    }
  if (ret == 0)
    ret = ocirun_make_error (err, ETIMEDOUT, "cgroup `%s`: the kernel did not %s it", d->abs,
                             frozen ? "freeze" : "thaw");
  if (frozen)
    ocirun_cgroup_write (d, "cgroup freezer", "cgroup.freeze", "0", NULL, NULL);
  return ret;
}

int
ocirun_cgroup_v2_is_frozen (struct ocirun_cgroup_dir *d, bool *frozen, ocirun_error_t *err)
{
  *frozen = false;
  if (d->fd < 0 || !ocirun_cgroup_has_file (d, "cgroup.freeze"))
    return 0;
  return events_frozen (d, frozen, err);
}

int
ocirun_cgroup_v2_kill_all (struct ocirun_cgroup_dir *d, ocirun_error_t *err)
{
  int ret;
  if (!ocirun_cgroup_has_file (d, "cgroup.kill"))
    return 0;
  ret = ocirun_cgroup_write (d, "cgroup kill", "cgroup.kill", "1", NULL, err);
  return ret < 0 ? ret : 1;
}
