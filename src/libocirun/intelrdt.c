/* linux.intelRdt through the resctrl filesystem: a control group named by
 * closID (shared) or the container id (owned), its schemata lines, an
 * optional monitoring group, and the init's pid in `tasks`. */
#include "config.h"
#include "intelrdt.h"
#include "util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* The resctrl mount point from mountinfo, or NULL when it is not mounted. */
static char *
resctrl_mount (void)
{
  cleanup_fclose FILE *f = fopen ("/proc/self/mountinfo", "re");
  cleanup_free char *line = NULL;
  size_t cap = 0;

  if (f == NULL)
    return NULL;
  while (getline (&line, &cap, f) > 0)
    {
      char *sep = strstr (line, " - ");
      char mnt[4096];
      if (sep == NULL || strncmp (sep + 3, "resctrl ", 8) != 0)
        continue;
      if (sscanf (line, "%*s %*s %*s %*s %4095s", mnt) == 1)
        return xstrdup (mnt);
    }
  return NULL;
}

static bool
valid_name (const char *s)
{
  return s && *s && strchr (s, '/') == NULL && strcmp (s, ".") != 0 && strcmp (s, "..") != 0;
}

static int
write_line (int dirfd, const char *file, const char *what, const char *value, ocirun_error_t *err)
{
  cleanup_free char *buf = NULL;
  int n = xasprintf (&buf, "%s\n", value);
  if (ocirun_write_file_at (dirfd, file, buf, n, err) < 0)
    return ocirun_error_prefix (err, "linux.intelRdt.%s `%s`", what, value);
  return 0;
}

int
ocirun_intelrdt_apply (const oci_linux *lx, const char *id, pid_t pid, char **owned_group, ocirun_error_t *err)
{
  const oci_intel_rdt *rdt = lx ? lx->intel_rdt : NULL;
  cleanup_free char *mnt = NULL, *group = NULL, *pidstr = NULL;
  cleanup_close int gfd = -1;
  bool created = false;
  int n;

  *owned_group = NULL;
  if (rdt == NULL)
    return 0;
  mnt = resctrl_mount ();
  if (mnt == NULL)
    return ocirun_make_error (err, -ENOTSUP,
                              "linux.intelRdt: the resctrl filesystem is not mounted: this host offers no Intel RDT");
  if (rdt->clos_id && !valid_name (rdt->clos_id))
    return ocirun_make_error (err, -EINVAL, "linux.intelRdt.closID: invalid name `%s`", rdt->clos_id);

  xasprintf (&group, "%s/%s", mnt, rdt->clos_id ? rdt->clos_id : id);
  if (mkdir (group, 0755) == 0)
    created = true;
  else if (errno != EEXIST)
    return ocirun_make_error (err, errno, "linux.intelRdt: mkdir `%s`", group);
  gfd = open (group, O_DIRECTORY | O_CLOEXEC);
  if (gfd < 0)
    return ocirun_make_error (err, errno, "linux.intelRdt: open `%s`", group);

  if (rdt->l3_cache_schema && write_line (gfd, "schemata", "l3CacheSchema", rdt->l3_cache_schema, err) < 0)
    goto fail;
  if (rdt->mem_bw_schema && write_line (gfd, "schemata", "memBwSchema", rdt->mem_bw_schema, err) < 0)
    goto fail;
  for (size_t i = 0; i < rdt->schemata_len; i++)
    if (write_line (gfd, "schemata", "schemata", rdt->schemata[i], err) < 0)
      goto fail;

  n = xasprintf (&pidstr, "%d\n", pid);
  if ((rdt->enable_monitoring || rdt->enable_cmt || rdt->enable_mbm))
    {
      cleanup_free char *mon = NULL;
      xasprintf (&mon, "mon_groups/%s", id);
      if (mkdirat (gfd, mon, 0755) < 0 && errno != EEXIST)
        {
          ocirun_make_error (err, errno, "linux.intelRdt: mkdir `%s/%s`", group, mon);
          goto fail;
        }
      free (mon);
      xasprintf (&mon, "mon_groups/%s/tasks", id);
      if (ocirun_write_file_at (gfd, mon, pidstr, n, err) < 0)
        goto fail;
    }
  else if (ocirun_write_file_at (gfd, "tasks", pidstr, n, err) < 0)
    goto fail;

  if (created)
    *owned_group = steal_pointer (&group);
  return 0;

fail:
  if (created)
    rmdir (group);
  return ocirun_error_ret (err);
}

int
ocirun_intelrdt_remove (const char *owned_group, ocirun_error_t *err)
{
  if (owned_group == NULL || *owned_group == '\0')
    return 0;
  /* Monitoring groups inside go away with the control group. */
  if (rmdir (owned_group) < 0 && errno != ENOENT)
    return ocirun_make_error (err, errno, "linux.intelRdt: rmdir `%s`", owned_group);
  return 0;
}
