#include "config.h"
#include "security.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statfs.h>

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

/* Opens a /proc/self file and checks that it really is procfs: after
 * pivot_root, /proc is whatever the container image put there. */
static int
open_proc_self (const char *name, int flags, ocirun_error_t *err)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  struct statfs sfs;

  xasprintf (&path, "/proc/self/%s", name);
  fd = open (path, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  if (fd < 0)
    return ocirun_make_error (err, errno, "open `%s`", path);
  if (fstatfs (fd, &sfs) < 0)
    return ocirun_make_error (err, errno, "statfs `%s`", path);
  if (sfs.f_type != PROC_SUPER_MAGIC)
    return ocirun_make_error (err, EPERM, "`%s` is not on procfs", path);
  return steal_fd (&fd);
}

static bool
read_starts_with (const char *path, char c)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  char buf[8];

  if (fd < 0)
    return false;
  return read (fd, buf, sizeof (buf)) > 0 && buf[0] == c;
}

bool
ocirun_apparmor_enabled (void)
{
  cleanup_close int fd = -1;
  char buf[64];

  if (access ("/sys/module/apparmor/parameters/enabled", F_OK) == 0)
    return read_starts_with ("/sys/module/apparmor/parameters/enabled", 'Y');
  /* No sysfs in this mount namespace: the task's own attr file is readable
   * only when AppArmor is active. */
  fd = open ("/proc/self/attr/apparmor/current", O_RDONLY | O_CLOEXEC);
  return fd >= 0 && read (fd, buf, sizeof (buf)) > 0;
}

bool
ocirun_selinux_enabled (void)
{
  cleanup_free char *data = NULL;
  size_t len;

  /* selinuxfs is only registered when SELinux is enabled at boot; unlike
   * /sys/fs/selinux this is visible from inside any mount namespace with a
   * /proc. */
  if (ocirun_read_file ("/proc/filesystems", &data, &len, NULL) < 0)
    return access ("/sys/fs/selinux", F_OK) == 0;
  return strstr (data, "\tselinuxfs\n") != NULL;
}

static int
write_attr (const char *name, const char *fallback, const char *value, ocirun_error_t *err)
{
  cleanup_close int fd = -1;
  size_t len = strlen (value);
  ssize_t n;

  fd = open_proc_self (name, O_WRONLY, err);
  if (fd < 0 && fallback)
    {
      ocirun_error_free (err);
      fd = open_proc_self (fallback, O_WRONLY, err);
    }
  if (fd < 0)
    return fd;
  /* One write: the LSM parses the buffer as a single command. */
  n = TEMP_FAILURE_RETRY_INT (write (fd, value, len));
  if (n < 0)
    return ocirun_make_error (err, errno, "write `%s` to /proc/self/%s", value, name);
  if ((size_t)n != len)
    return ocirun_make_error (err, EIO, "short write to /proc/self/%s", name);
  return 0;
}

int
ocirun_apparmor_exec_profile (const char *profile, ocirun_error_t *err)
{
  cleanup_free char *cmd = NULL;
  int ret;

  if (profile == NULL || profile[0] == '\0')
    return 0;
  if (!ocirun_apparmor_enabled ())
    return ocirun_make_error (err, -EOPNOTSUPP,
                              "apparmor profile `%s` requested but AppArmor is not enabled on this host", profile);
  xasprintf (&cmd, "exec %s", profile);
  ret = write_attr ("attr/apparmor/exec", "attr/exec", cmd, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "apply apparmor profile `%s`", profile);
  return 0;
}

int
ocirun_selinux_exec_label (const char *label, ocirun_error_t *err)
{
  int ret;

  if (label == NULL || label[0] == '\0')
    return 0;
  if (!ocirun_selinux_enabled ())
    return ocirun_make_error (err, -EOPNOTSUPP, "selinux label `%s` requested but SELinux is not enabled on this host",
                              label);
  ret = write_attr ("attr/exec", NULL, label, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "set selinux exec label `%s`", label);
  return 0;
}
