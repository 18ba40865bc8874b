/* Placing the calling process in a container's cgroup.
 *
 * Moving another process (writing its pid to cgroup.procs) takes the
 * kernel's global threadgroup lock for writing, which waits for an RCU grace
 * period: several milliseconds on the create path. A single-threaded process
 * that moves itself by writing "0" to a v1 `tasks` file skips that lock, and
 * clone3(CLONE_INTO_CGROUP) places a child in a cgroup2 directory without
 * it. So the parent clones into the unified directory and the child moves
 * itself into the v1 hierarchies through the directory fds it inherited. */
#include "config.h"
#include "cgroup-internal.h"
#include "../util.h"

#include <fcntl.h>
#include <string.h>

int
ocirun_cgroup_unified_fd (struct ocirun_cgroup *cg)
{
  struct ocirun_cgroup_dir *d;

  if (cg == NULL)
    return -1;
  d = ocirun_cgroup_unified (cg);
  return d ? d->fd : -1;
}

int
ocirun_cgroup_enter_self (struct ocirun_cgroup *cg, bool skip_unified, ocirun_error_t *err)
{
  if (cg == NULL)
    return 0;
  for (size_t i = 0; i < cg->len; i++)
    {
      struct ocirun_cgroup_dir *d = &cg->dirs[i];
      const char *file = d->h.unified ? "cgroup.procs" : "tasks";
      cleanup_close int fd = -1;

      if (d->fd < 0 || (d->h.unified && skip_unified))
        continue;
      fd = openat (d->fd, file, O_WRONLY | O_CLOEXEC);
      if (fd < 0)
        return ocirun_make_error (err, errno, "open `%s/%s`", d->abs, file);
      if (TEMP_FAILURE_RETRY_INT (write (fd, "0", 1)) != 1)
        return ocirun_make_error (err, errno, "join cgroup `%s`", d->abs);
    }
  return 0;
}

const char *
ocirun_cgroup_freezer_dir (struct ocirun_cgroup *cg)
{
  struct ocirun_cgroup_dir *d;

  if (cg == NULL)
    return NULL;
  d = cg->mode == OCIRUN_CGROUP_V2 ? ocirun_cgroup_unified (cg) : ocirun_cgroup_find (cg, "freezer");
  return d ? d->abs : NULL;
}

int
ocirun_cgroup_dir_is_frozen (const char *dir, bool *frozen, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir d = { .abs = (char *)dir, .fd = -1 };
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  char buf[16];
  int ret;

  *frozen = false;
  /* `list` asks this of every container: the usual answer, a thawed v1
   * freezer, in one open and one read; no freezer.state is cgroup v2. */
  xasprintf (&path, "%s/freezer.state", dir);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0 && read (fd, buf, sizeof buf) >= 6 && memcmp (buf, "THAWED", 6) == 0)
    return 0;
  d.h.unified = fd < 0 && errno == ENOENT;
  d.fd = open (dir, O_DIRECTORY | O_CLOEXEC);
  if (d.fd < 0)
    return errno == ENOENT ? 0 : ocirun_make_error (err, errno, "open `%s`", dir);
  ret = d.h.unified ? ocirun_cgroup_v2_is_frozen (&d, frozen, err) : ocirun_cgroup_v1_is_frozen (&d, frozen, err);
  close (d.fd);
  return ret;
}
