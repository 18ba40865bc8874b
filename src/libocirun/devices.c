/* Device nodes and links under the container's /dev, made the way runc makes
 * them: mknod when the kernel lets us, a bind mount of the host's node when
 * it does not (user namespaces cannot create device nodes). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "devices.h"
#include "mounts.h"
#include "util.h"

struct default_device
{
  const char *path;
  unsigned major, minor;
};

static const struct default_device default_devices[] = {
  { "/dev/null", 1, 3 },   { "/dev/zero", 1, 5 },    { "/dev/full", 1, 7 },
  { "/dev/random", 1, 8 }, { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
};

bool
ocirun_needs_setup_dev (const oci_config *config)
{
  for (size_t i = 0; i < config->mounts_len && config->mounts[i]; i++)
    if (ocirun_path_is_dev (config->mounts[i]->destination) && ocirun_mount_is_bind (config->mounts[i]))
      return false;
  return true;
}

/* Splits an absolute container path into a directory fd (created when
 * missing) and the last component. */
static int
open_parent (struct ocirun_container *c, const char *path, const char **name, ocirun_error_t *err)
{
  cleanup_free char *dir = xstrdup (path);
  char *slash;
  size_t len = strlen (dir);

  while (len > 1 && dir[len - 1] == '/')
    dir[--len] = '\0';
  slash = strrchr (dir, '/');
  if (slash == NULL || slash[1] == '\0')
    return ocirun_make_error (err, EINVAL, "invalid device path `%s`", path);
  *name = path + (slash + 1 - dir);
  if (slash == dir)
    slash[1] = '\0';
  else
    *slash = '\0';
  return ocirun_mkdir_in_root (c->rootfs_fd, dir, 0755, false, err);
}

static int
bind_device (struct ocirun_container *c, const char *path, ocirun_error_t *err)
{
  cleanup_close int target = -1, src = -1;
  char sbuf[32], tbuf[32];

  src = open (path, O_PATH | O_CLOEXEC);
  if (src < 0)
    return ocirun_make_error (err, errno, "bind device `%s`: open host node", path);
  target = ocirun_mkdir_in_root (c->rootfs_fd, path, 0600, true, err);
  if (target < 0)
    return ocirun_error_prefix (err, "bind device `%s`", path);
  snprintf (sbuf, sizeof (sbuf), "/proc/self/fd/%d", src);
  snprintf (tbuf, sizeof (tbuf), "/proc/self/fd/%d", target);
  if (mount (sbuf, tbuf, NULL, MS_BIND, NULL) < 0)
    return ocirun_make_error (err, errno, "mount `%s` on `%s`", path, path);
  return 0;
}

static int
create_device (struct ocirun_container *c, const char *path, mode_t type, unsigned major, unsigned minor, mode_t mode,
               uid_t uid, gid_t gid, bool bind, ocirun_error_t *err)
{
  cleanup_close int dirfd = -1;
  const char *name = NULL;

  if (bind)
    return bind_device (c, path, err);
  dirfd = open_parent (c, path, &name, err);
  if (dirfd < 0)
    return ocirun_error_prefix (err, "create device `%s`", path);
  if (mknodat (dirfd, name, type | (mode & 07777), makedev (major, minor)) < 0)
    {
      if (errno == EEXIST)
        return 0;
      if (errno == EPERM)
        return bind_device (c, path, err);
      return ocirun_make_error (err, errno, "mknod `%s`", path);
    }
  /* mknod honours the umask; the config's mode is meant literally. */
  if (fchmodat (dirfd, name, mode & 07777, 0) < 0)
    return ocirun_make_error (err, errno, "chmod `%s`", path);
  if (fchownat (dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    return ocirun_make_error (err, errno, "chown `%s`", path);
  return 0;
}

static bool
same_path (const char *a, const char *b)
{
  while (*a == '/')
    a++;
  while (*b == '/')
    b++;
  return strcmp (a, b) == 0;
}

int
ocirun_create_devices (struct ocirun_container *c, bool setup_dev, ocirun_error_t *err)
{
  const oci_linux *lx = c->config->linux;
  size_t n = lx ? lx->devices_len : 0;
  bool bind = c->userns || c->rootless;
  int ret;

  if (setup_dev)
    for (size_t i = 0; i < sizeof (default_devices) / sizeof (default_devices[0]); i++)
      {
        bool overridden = false;
        for (size_t j = 0; j < n && lx->devices[j]; j++)
          if (same_path (lx->devices[j]->path, default_devices[i].path))
            overridden = true;
        if (overridden)
          continue;
        ret = create_device (c, default_devices[i].path, S_IFCHR, default_devices[i].major, default_devices[i].minor,
                             0666, 0, 0, bind, err);
        if (ret < 0)
          return ret;
      }

  for (size_t i = 0; i < n && lx->devices[i]; i++)
    {
      const oci_device *d = lx->devices[i];
      mode_t type;

      if (strcmp (d->type, "c") == 0 || strcmp (d->type, "u") == 0)
        type = S_IFCHR;
      else if (strcmp (d->type, "b") == 0)
        type = S_IFBLK;
      else if (strcmp (d->type, "p") == 0)
        type = S_IFIFO;
      else
        return ocirun_make_error (err, EINVAL, "device `%s`: invalid type `%s`", d->path, d->type);
      if (d->path[0] != '/')
        return ocirun_make_error (err, EINVAL, "device `%s`: path must be absolute", d->path);
      ret = create_device (c, d->path, type, (unsigned)d->major, (unsigned)d->minor,
                           d->has_file_mode ? (mode_t)d->file_mode : 0666, d->has_uid ? d->uid : 0,
                           d->has_gid ? d->gid : 0, bind && type != S_IFIFO, err);
      if (ret < 0)
        return ret;
    }
  return 0;
}

int
ocirun_setup_dev_symlinks (struct ocirun_container *c, ocirun_error_t *err)
{
  static const char *const links[][2] = {
    { "/proc/self/fd", "fd" },
    { "/proc/self/fd/0", "stdin" },
    { "/proc/self/fd/1", "stdout" },
    { "/proc/self/fd/2", "stderr" },
  };
  cleanup_close int dev = ocirun_mkdir_in_root (c->rootfs_fd, "/dev", 0755, false, err);

  if (dev < 0)
    return dev;
  for (size_t i = 0; i < sizeof (links) / sizeof (links[0]); i++)
    if (symlinkat (links[i][0], dev, links[i][1]) < 0 && errno != EEXIST)
      return ocirun_make_error (err, errno, "symlink `%s` to `/dev/%s`", links[i][0], links[i][1]);
  /* Only where the host kernel has one, as runc does. */
  if (access ("/proc/kcore", F_OK) == 0 && symlinkat ("/proc/kcore", dev, "core") < 0 && errno != EEXIST)
    return ocirun_make_error (err, errno, "symlink `/proc/kcore` to `/dev/core`");

  /* /dev/ptmx must be the devpts instance's own, not a host node. */
  if (unlinkat (dev, "ptmx", 0) < 0 && errno != ENOENT)
    return ocirun_make_error (err, errno, "remove `/dev/ptmx`");
  if (symlinkat ("pts/ptmx", dev, "ptmx") < 0)
    return ocirun_make_error (err, errno, "symlink `pts/ptmx` to `/dev/ptmx`");
  return 0;
}

int
ocirun_setup_console (struct ocirun_container *c, ocirun_error_t *err)
{
  cleanup_close int target = -1;
  char tbuf[32];

  if (c->console_slave == NULL)
    return 0;
  target = ocirun_mkdir_in_root (c->rootfs_fd, "/dev/console", 0600, true, err);
  if (target < 0)
    return ocirun_error_prefix (err, "mount `%s` on `/dev/console`", c->console_slave);
  snprintf (tbuf, sizeof (tbuf), "/proc/self/fd/%d", target);
  if (mount (c->console_slave, tbuf, NULL, MS_BIND, NULL) < 0)
    return ocirun_make_error (err, errno, "mount `%s` on `/dev/console`", c->console_slave);
  return 0;
}
