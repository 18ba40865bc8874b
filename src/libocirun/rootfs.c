/* The container's filesystem view, in runc's order: prepare (before the
 * createContainer hooks) mounts everything below the rootfs while the host's
 * tree is still reachable; finalize switches root and locks things down. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "devices.h"
#include "mounts.h"
#include "setup.h"
#include "util.h"

static const char *
rootfs_propagation (const oci_config *config)
{
  return config->linux ? config->linux->rootfs_propagation : NULL;
}

int
ocirun_rootfs_prepare (struct ocirun_container *c, ocirun_error_t *err)
{
  unsigned long propagation;
  char real[PATH_MAX];
  bool setup_dev;
  int ret;

  c->rootfs_fd = -1;
  ret = ocirun_parse_propagation (rootfs_propagation (c->config), &propagation, err);
  if (ret < 0)
    return ret;
  if (realpath (c->rootfs, real) == NULL)
    return ocirun_make_error (err, errno, "rootfs `%s`", c->rootfs);

  /* Nothing mounted from here on may reach the host: rslave unless the
   * config asks otherwise. */
  if (mount (NULL, "/", NULL, propagation ? propagation : MS_SLAVE | MS_REC, NULL) < 0)
    return ocirun_make_error (err, errno, "set propagation of `/`");
  ret = ocirun_make_parent_mount_private (real, err);
  if (ret < 0)
    return ret;
  /* pivot_root needs the new root to be a mount point. */
  if (mount (real, real, NULL, MS_BIND | MS_REC, NULL) < 0)
    return ocirun_make_error (err, errno, "bind mount rootfs `%s`", real);
  c->rootfs_fd = open (real, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (c->rootfs_fd < 0)
    return ocirun_make_error (err, errno, "open rootfs `%s`", real);

  for (size_t i = 0; i < c->config->mounts_len && c->config->mounts[i]; i++)
    {
      ret = ocirun_mount_one (c, c->config->mounts[i], err);
      if (ret < 0)
        return ret;
    }

  setup_dev = ocirun_needs_setup_dev (c->config);
  if (setup_dev)
    {
      ret = ocirun_create_devices (c, true, err);
      if (ret < 0)
        return ret;
      ret = ocirun_setup_dev_symlinks (c, err);
      if (ret < 0)
        return ret;
    }
  return ocirun_setup_console (c, err);
}

static int
pivot_root_here (struct ocirun_container *c, ocirun_error_t *err)
{
  cleanup_close int oldroot = open ("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);

  if (oldroot < 0)
    return ocirun_make_error (err, errno, "open `/`");
  if (fchdir (c->rootfs_fd) < 0)
    return ocirun_make_error (err, errno, "chdir to rootfs");
  /* pivot_root(".", ".") stacks the old root on top of the new one, so no
   * directory for it is needed inside the rootfs. */
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return ocirun_make_error (err, errno, "pivot_root");
  if (fchdir (oldroot) < 0)
    return ocirun_make_error (err, errno, "chdir to old root");
  /* Slave first, so the detach below does not propagate to the host. */
  if (mount (NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    return ocirun_make_error (err, errno, "make old root rslave");
  if (umount2 (".", MNT_DETACH) < 0)
    return ocirun_make_error (err, errno, "unmount old root");
  if (chdir ("/") < 0)
    return ocirun_make_error (err, errno, "chdir `/`");
  return 0;
}

static int
move_root_here (struct ocirun_container *c, ocirun_error_t *err)
{
  if (fchdir (c->rootfs_fd) < 0)
    return ocirun_make_error (err, errno, "chdir to rootfs");
  if (mount (".", "/", NULL, MS_MOVE, NULL) < 0)
    return ocirun_make_error (err, errno, "move rootfs to `/`");
  if (chroot (".") < 0)
    return ocirun_make_error (err, errno, "chroot");
  if (chdir ("/") < 0)
    return ocirun_make_error (err, errno, "chdir `/`");
  return 0;
}

static int
mask_path (const char *path, ocirun_error_t *err)
{
  if (mount ("/dev/null", path, NULL, MS_BIND, NULL) == 0)
    return 0;
  if (errno == ENOENT)
    return 0;
  if (errno == ENOTDIR)
    {
      /* A directory: hide it under an empty read-only tmpfs. */
      if (mount ("tmpfs", path, "tmpfs", MS_RDONLY, NULL) < 0)
        return ocirun_make_error (err, errno, "mask `%s`", path);
      return 0;
    }
  return ocirun_make_error (err, errno, "mask `%s`", path);
}

static int
readonly_path (const char *path, ocirun_error_t *err)
{
  struct statvfs st;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;

  if (mount (path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
    {
      if (errno == ENOENT)
        return 0;
      return ocirun_make_error (err, errno, "bind mount `%s` read-only", path);
    }
  /* Keep what the mount already had: in a user namespace those are locked. */
  if (statvfs (path, &st) < 0)
    return ocirun_make_error (err, errno, "statfs `%s`", path);
  if (st.f_flag & ST_NOSUID)
    flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV)
    flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC)
    flags |= MS_NOEXEC;
  if (mount (path, path, NULL, flags, NULL) == 0)
    return 0;
  return ocirun_remount_bind (path, flags, path, err);
}

/* Stdio that is the host's /dev/null (what engines give a detached
 * container) becomes the container's own, as runc does: a descriptor on a
 * mount outside the container cannot be checkpointed (criu finds no mount
 * for it), and it would be the one host file the container holds open. */
static int
reopen_dev_null (ocirun_error_t *err)
{
  cleanup_close int fd = -1;
  struct stat st[3], null_st;
  bool any = false;

  /* Most stdio is pipes or a terminal: then nothing more is looked at. */
  for (int i = 0; i <= 2; i++)
    {
      bool is_null = fstat (i, &st[i]) == 0 && S_ISCHR (st[i].st_mode) && st[i].st_rdev == makedev (1, 3);
      if (!is_null)
        st[i].st_rdev = 0;
      any |= is_null;
    }
  if (!any)
    return 0;
  fd = open ("/dev/null", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return 0; /* no /dev/null in this container: nothing to swap in */
  if (fstat (fd, &null_st) < 0)
    return ocirun_make_error (err, errno, "stat `/dev/null`");
  if (!S_ISCHR (null_st.st_mode) || null_st.st_rdev != makedev (1, 3))
    return 0;
  for (int i = 0; i <= 2; i++)
    {
      if (st[i].st_rdev == 0 || (st[i].st_dev == null_st.st_dev && st[i].st_ino == null_st.st_ino))
        continue; /* not /dev/null, or already the container's */
      if (dup3 (fd, i, 0) < 0)
        return ocirun_make_error (err, errno, "reopen stdio %d on the container's `/dev/null`", i);
    }
  return 0;
}

int
ocirun_rootfs_finalize (struct ocirun_container *c, ocirun_error_t *err)
{
  const oci_linux *lx = c->config->linux;
  unsigned long propagation;
  int ret;

  ret = ocirun_parse_propagation (rootfs_propagation (c->config), &propagation, err);
  if (ret < 0)
    return ret;
  if (c->rootfs_fd < 0)
    return ocirun_make_error (err, EBADF, "rootfs not prepared");

  ret = c->no_pivot ? move_root_here (c, err) : pivot_root_here (c, err);
  if (ret < 0)
    return ret;

  /* Applied to the new `/` only now: before the switch it would have been
   * the host's root mount. */
  if (propagation && mount (NULL, "/", NULL, propagation, NULL) < 0)
    return ocirun_make_error (err, errno, "set propagation of `/`");

  if (lx)
    {
      for (size_t i = 0; i < lx->readonly_paths_len && lx->readonly_paths[i]; i++)
        {
          ret = readonly_path (lx->readonly_paths[i], err);
          if (ret < 0)
            return ret;
        }
      for (size_t i = 0; i < lx->masked_paths_len && lx->masked_paths[i]; i++)
        {
          ret = mask_path (lx->masked_paths[i], err);
          if (ret < 0)
            return ret;
        }
    }

  /* /dev was mounted writable so the devices could be made (runc#1363). */
  for (size_t i = 0; i < c->config->mounts_len && c->config->mounts[i]; i++)
    {
      const oci_mount *m = c->config->mounts[i];
      struct ocirun_mount_options o;

      if (!ocirun_path_is_dev (m->destination))
        continue;
      ret = ocirun_parse_mount_options (m->options, m->options_len, &o, err);
      if (ret < 0)
        return ret;
      if (o.flags & MS_RDONLY)
        {
          if (mount (NULL, "/dev", NULL, (o.flags & ~(MS_BIND | MS_REC)) | MS_REMOUNT, o.data) < 0)
            ret = ocirun_make_error (err, errno, "remount `/dev` read-only");
        }
      ocirun_mount_options_clear (&o);
      if (ret < 0)
        return ret;
    }

  if (c->config->root && c->config->root->readonly)
    {
      ret = ocirun_remount_bind ("/", MS_RDONLY, "/", err);
      if (ret < 0)
        return ret;
    }

  ret = reopen_dev_null (err);
  if (ret < 0)
    return ret;
  if (chdir ("/") < 0)
    return ocirun_make_error (err, errno, "chdir `/`");
  return 0;
}
