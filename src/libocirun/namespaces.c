#include "config.h"
#include "namespaces.h"
#include "util.h"

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>

static const struct
{
  const char *type;
  const char *proc;
  int flag;
} ns_table[] = {
  /* Order matters for joining: the user namespace first, so that the
   * others are joined with the privileges it grants. */
  { "user", "user", CLONE_NEWUSER }, { "pid", "pid", CLONE_NEWPID },  { "network", "net", CLONE_NEWNET },
  { "ipc", "ipc", CLONE_NEWIPC },    { "uts", "uts", CLONE_NEWUTS },  { "cgroup", "cgroup", CLONE_NEWCGROUP },
  { "time", "time", CLONE_NEWTIME }, { "mount", "mnt", CLONE_NEWNS },
};

int
ocirun_ns_flag (const char *type)
{
  for (size_t i = 0; i < sizeof ns_table / sizeof ns_table[0]; i++)
    if (strcmp (ns_table[i].type, type) == 0)
      return ns_table[i].flag;
  return 0;
}

const char *
ocirun_ns_proc_name (int flag)
{
  for (size_t i = 0; i < sizeof ns_table / sizeof ns_table[0]; i++)
    if (ns_table[i].flag == flag)
      return ns_table[i].proc;
  return NULL;
}

void
ocirun_ns_plan_close (struct ocirun_ns_plan *plan)
{
  for (int i = 0; i < plan->n_join; i++)
    if (plan->join_fd[i] >= 0)
      close (plan->join_fd[i]);
  plan->n_join = 0;
}

/* Opens path and appends it to the plan; on failure closes the whole plan. */
static int
plan_add (struct ocirun_ns_plan *plan, const char *type, const char *path, int flag, ocirun_error_t *err)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    {
      int ret = ocirun_make_error (err, errno, "open %s namespace `%s`", type, path);
      ocirun_ns_plan_close (plan);
      return ret;
    }
  plan->join_fd[plan->n_join] = fd;
  plan->join_type[plan->n_join] = flag;
  plan->n_join++;
  return 0;
}

int
ocirun_ns_plan_from_pid (pid_t pid, int flags, struct ocirun_ns_plan *plan, ocirun_error_t *err)
{
  memset (plan, 0, sizeof *plan);
  plan->join_flags = flags;
  /* Table order: the user namespace first. */
  for (size_t t = 0; t < sizeof ns_table / sizeof ns_table[0]; t++)
    {
      char path[64];
      int ret;

      if (!(flags & ns_table[t].flag))
        continue;
      snprintf (path, sizeof path, "/proc/%d/ns/%s", (int)pid, ns_table[t].proc);
      ret = plan_add (plan, ns_table[t].type, path, ns_table[t].flag, err);
      if (ret < 0)
        return ret;
    }
  return 0;
}

int
ocirun_ns_plan_build (const oci_linux *linux, struct ocirun_ns_plan *plan, ocirun_error_t *err)
{
  int seen = 0;

  memset (plan, 0, sizeof *plan);
  if (linux == NULL)
    return 0;

  for (size_t i = 0; i < linux->namespaces_len; i++)
    {
      const oci_namespace *ns = linux->namespaces[i];
      int flag = ocirun_ns_flag (ns->type);

      if (flag == 0)
        return ocirun_make_error (err, -EINVAL, "linux.namespaces[%zu].type: unknown namespace type `%s`", i, ns->type);
      if (seen & flag)
        return ocirun_make_error (err, -EINVAL, "linux.namespaces[%zu]: namespace `%s` is listed twice", i, ns->type);
      seen |= flag;
      if (ns->path == NULL || ns->path[0] == '\0')
        plan->new_flags |= flag;
      else
        plan->join_flags |= flag;
    }

  /* Open in table order so that ocirun_ns_join needs no sorting. */
  for (size_t t = 0; t < sizeof ns_table / sizeof ns_table[0]; t++)
    {
      if (!(plan->join_flags & ns_table[t].flag))
        continue;
      for (size_t i = 0; i < linux->namespaces_len; i++)
        {
          const oci_namespace *ns = linux->namespaces[i];
          int ret;

          if (ocirun_ns_flag (ns->type) != ns_table[t].flag || ns->path == NULL || ns->path[0] == '\0')
            continue;
          ret = plan_add (plan, ns->type, ns->path, ns_table[t].flag, err);
          if (ret < 0)
            return ret;
        }
    }
  return 0;
}

int
ocirun_ns_join (struct ocirun_ns_plan *plan, int skip, ocirun_error_t *err)
{
  for (int i = 0; i < plan->n_join; i++)
    {
      if (plan->join_type[i] & skip)
        continue;
      if (setns (plan->join_fd[i], plan->join_type[i]) < 0)
        return ocirun_make_error (err, errno, "join %s namespace", ocirun_ns_proc_name (plan->join_type[i]));
    }
  return 0;
}

static int
write_mapping (pid_t pid, const char *file, oci_id_mapping **maps, size_t n, ocirun_error_t *err)
{
  char path[64];
  size_t cap = 64 * (n + 1), len = 0;
  cleanup_free char *buf = xmalloc0 (cap);

  for (size_t i = 0; i < n; i++)
    len += snprintf (buf + len, cap - len, "%u %u %u\n", maps[i]->container_id, maps[i]->host_id, maps[i]->size);

  snprintf (path, sizeof path, "/proc/%d/%s", pid, file);
  if (ocirun_write_file_at (AT_FDCWD, path, buf, len, err) < 0)
    return ocirun_error_prefix (err, "write %s", file);
  return 0;
}

int
ocirun_ns_write_id_maps (pid_t pid, const oci_linux *linux, bool deny_setgroups, ocirun_error_t *err)
{
  char path[64];
  int ret;

  if (deny_setgroups)
    {
      snprintf (path, sizeof path, "/proc/%d/setgroups", pid);
      ret = ocirun_write_file_at (AT_FDCWD, path, "deny", 4, err);
      if (ret < 0 && (*err)->status != ENOENT)
        return ret;
      ocirun_error_free (err);
    }
  ret = write_mapping (pid, "uid_map", linux->uid_mappings, linux->uid_mappings_len, err);
  if (ret < 0)
    return ret;
  return write_mapping (pid, "gid_map", linux->gid_mappings, linux->gid_mappings_len, err);
}

int
ocirun_ns_write_time_offsets (const oci_linux *linux, ocirun_error_t *err)
{
  size_t cap = 128, len = 0;
  cleanup_free char *buf = NULL;
  const oci_map_time_offset *m = linux->time_offsets;

  if (m == NULL || m->len == 0)
    return 0;
  cap = 96 * m->len;
  buf = xmalloc0 (cap);
  for (size_t i = 0; i < m->len; i++)
    {
      const char *clock = m->keys[i];
      /* The kernel names the clocks "monotonic" and "boottime"; the spec
       * uses the same names. */
      if (strcmp (clock, "monotonic") != 0 && strcmp (clock, "boottime") != 0)
        return ocirun_make_error (err, -EINVAL, "linux.timeOffsets: unknown clock `%s`", clock);
      len += snprintf (buf + len, cap - len, "%s %lld %u\n", clock, (long long)m->values[i]->secs,
                       m->values[i]->nanosecs);
    }
  /* One write per line: the kernel parses a single offset per write. */
  {
    cleanup_close int fd = open ("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
    char *line = buf;
    if (fd < 0)
      return ocirun_make_error (err, errno, "open /proc/self/timens_offsets");
    while (*line)
      {
        char *nl = strchr (line, '\n');
        if (ocirun_write_all (fd, line, nl - line + 1) < 0)
          return ocirun_make_error (err, errno, "write /proc/self/timens_offsets `%.*s`", (int)(nl - line), line);
        line = nl + 1;
      }
  }
  return 0;
}
