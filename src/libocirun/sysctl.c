#include "config.h"
#include "setup.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statfs.h>

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

/* "net.ipv4.ip_forward" -> "net/ipv4/ip_forward" (a '/' in the key stays,
 * as with runc: it is how an interface name with a dot is written). Every
 * component must be a plain name so the write cannot leave /proc/sys. */
static int
sysctl_path (const char *key, char **out, ocirun_error_t *err)
{
  cleanup_free char *path = xstrdup (key);
  char *p, *comp;

  for (p = path; *p; p++)
    if (*p == '.')
      *p = '/';
  comp = path;
  for (;;)
    {
      size_t n = strcspn (comp, "/");
      if (n == 0 || (n == 1 && comp[0] == '.') || (n == 2 && comp[0] == '.' && comp[1] == '.'))
        return ocirun_make_error (err, -EINVAL, "invalid sysctl key `%s`", key);
      if (comp[n] == '\0')
        break;
      comp += n + 1;
    }
  *out = steal_pointer (&path);
  return 0;
}

static int
write_sysctl (int procsys, const char *key, const char *value, ocirun_error_t *err)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  size_t len = strlen (value);
  ssize_t n;
  int ret;

  ret = sysctl_path (key, &path, err);
  if (ret < 0)
    return ret;
  fd = openat (procsys, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  if (fd < 0)
    return ocirun_make_error (err, errno, "sysctl `%s`: open `/proc/sys/%s`", key, path);
  n = TEMP_FAILURE_RETRY_INT (write (fd, value, len));
  if (n < 0)
    return ocirun_make_error (err, errno, "sysctl `%s`: write `%s`", key, value);
  return 0;
}

int
ocirun_set_hostname_sysctl (const oci_config *config, ocirun_error_t *err)
{
  const oci_map_string *sysctl = config->linux ? config->linux->sysctl : NULL;
  cleanup_close int procsys = -1;
  struct statfs sfs;
  size_t i;
  int ret;

  if (config->hostname && config->hostname[0] && sethostname (config->hostname, strlen (config->hostname)) < 0)
    return ocirun_make_error (err, errno, "sethostname `%s`", config->hostname);
  if (config->domainname && config->domainname[0]
      && setdomainname (config->domainname, strlen (config->domainname)) < 0)
    return ocirun_make_error (err, errno, "setdomainname `%s`", config->domainname);

  if (sysctl == NULL || sysctl->len == 0)
    return 0;

  procsys = open ("/proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (procsys < 0)
    return ocirun_make_error (err, errno, "open `/proc/sys`");
  if (fstatfs (procsys, &sfs) < 0)
    return ocirun_make_error (err, errno, "statfs `/proc/sys`");
  if (sfs.f_type != PROC_SUPER_MAGIC)
    return ocirun_make_error (err, EPERM, "`/proc/sys` is not on procfs");

  for (i = 0; i < sysctl->len; i++)
    {
      ret = write_sysctl (procsys, sysctl->keys[i], sysctl->values[i], err);
      if (ret < 0)
        return ret;
    }
  return 0;
}
