#include "config.h"
#include "netdev.h"
#include "ocirun.h"
#include "seccomp-filter.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <unistd.h>

char *
ocirun_default_root (bool rootless)
{
  const char *xdg = getenv ("XDG_RUNTIME_DIR");
  char *r = NULL;

  if (rootless && xdg && *xdg)
    {
      xasprintf (&r, "%s/ocirun", xdg);
      return r;
    }
  return xstrdup ("/run/ocirun");
}

int
ocirun_validate_id (const char *id, ocirun_error_t *err)
{
  size_t len;

  if (id == NULL || *id == '\0')
    return ocirun_make_error (err, -EINVAL, "invalid id format: container id cannot be empty");
  len = strlen (id);
  if (len > 1024)
    return ocirun_make_error (err, -EINVAL, "invalid id format: container id is longer than 1024 characters");
  /* The id names a directory under the state root: `.` and `..` would
   * escape or alias it. */
  if (strcmp (id, ".") == 0 || strcmp (id, "..") == 0)
    return ocirun_make_error (err, -EINVAL, "invalid id format: `%s`", id);
  for (const char *p = id; *p; p++)
    if (!(isalnum ((unsigned char)*p) || strchr ("_+.-", *p)))
      return ocirun_make_error (err, -EINVAL, "invalid id format: `%s`", id);
  return 0;
}

void
ocirun_problems_add (struct ocirun_problems *p, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  if (msg == NULL)
    msg = xstrdup ("out of memory while reporting a problem");
  p->msgs = xrealloc (p->msgs, (p->len + 2) * sizeof (char *));
  p->msgs[p->len++] = msg;
  p->msgs[p->len] = NULL;
}

void
ocirun_problems_free (struct ocirun_problems *p)
{
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->len; i++)
    free (p->msgs[i]);
  free (p->msgs);
  p->msgs = NULL;
  p->len = 0;
}

static bool
in_list (const char *const *list, const char *s)
{
  for (; *list; list++)
    if (strcmp (*list, s) == 0)
      return true;
  return false;
}

static const char *const namespace_types[]
    = { "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time", NULL };
static const char *const rlimit_names[] = { "RLIMIT_AS",
                                            "RLIMIT_CORE",
                                            "RLIMIT_CPU",
                                            "RLIMIT_DATA",
                                            "RLIMIT_FSIZE",
                                            "RLIMIT_LOCKS",
                                            "RLIMIT_MEMLOCK",
                                            "RLIMIT_MSGQUEUE",
                                            "RLIMIT_NICE",
                                            "RLIMIT_NOFILE",
                                            "RLIMIT_NPROC",
                                            "RLIMIT_RSS",
                                            "RLIMIT_RTPRIO",
                                            "RLIMIT_RTTIME",
                                            "RLIMIT_SIGPENDING",
                                            "RLIMIT_STACK",
                                            NULL };
static const char *const seccomp_actions[]
    = { "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",   "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",        "SCMP_ACT_LOG",         "SCMP_ACT_NOTIFY", NULL };
static const char *const seccomp_ops[] = { "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",        "SCMP_CMP_EQ",
                                           "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ", NULL };
static const char *const seccomp_flags[]
    = { "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", NULL };
static const char *const propagations[]
    = { "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable", NULL };
static const char *const sched_policies[]
    = { "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE", NULL };
static const char *const sched_flags[]
    = { "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM",        "SCHED_FLAG_DL_OVERRUN",     "SCHED_FLAG_KEEP_POLICY",
        "SCHED_FLAG_KEEP_PARAMS",   "SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MAX", NULL };
static const char *const ioprio_classes[] = { "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE", NULL };
static const char *const personality_domains[] = { "LINUX", "LINUX32", NULL };
static const char *const mpol_modes[]
    = { "MPOL_DEFAULT",   "MPOL_BIND",           "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
        "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL",      NULL };
static const char *const mpol_flags[]
    = { "MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES", NULL };
/* The ipc-namespaced sysctls, as the kernel (and runc) define them. */
static const char *const ipc_sysctls[]
    = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",          "kernel.sem", "kernel.shmall",
        "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", NULL };

static bool
capability_known (const char *name)
{
  char lower[64];
  cap_value_t v;
  size_t i;

  if (strncmp (name, "CAP_", 4) != 0 || strlen (name) >= sizeof lower)
    return false;
  for (i = 0; name[i]; i++)
    lower[i] = (char)tolower ((unsigned char)name[i]);
  lower[i] = '\0';
  return cap_from_name (lower, &v) == 0 && v <= CAP_LAST_CAP;
}

static bool
arch_known (const char *name)
{
  char lower[64];
  size_t i;

  if (strncmp (name, "SCMP_ARCH_", 10) != 0 || strlen (name) >= sizeof lower)
    return false;
  name += 10;
  for (i = 0; name[i]; i++)
    lower[i] = (char)tolower ((unsigned char)name[i]);
  lower[i] = '\0';
  return ocirun_seccomp_arch_known (lower);
}

struct ns_info
{
  bool present; /* listed in linux.namespaces */
  bool new_ns;  /* listed without a path: the runtime creates it */
};

static struct ns_info
find_ns (const oci_config *c, const char *type)
{
  struct ns_info r = { false, false };
  if (c->linux == NULL)
    return r;
  for (size_t i = 0; i < c->linux->namespaces_len; i++)
    if (strcmp (c->linux->namespaces[i]->type, type) == 0)
      {
        r.present = true;
        r.new_ns = c->linux->namespaces[i]->path == NULL || c->linux->namespaces[i]->path[0] == '\0';
      }
  return r;
}

static void
check_hook_list (struct ocirun_problems *p, const char *kind, oci_hook **hooks, size_t len)
{
  for (size_t i = 0; i < len; i++)
    {
      const char *path = hooks[i]->path;
      struct stat st;

      if (path[0] != '/')
        {
          ocirun_problems_add (p, "hooks.%s[%zu].path: `%s` is not an absolute path", kind, i, path);
          continue;
        }
      if (stat (path, &st) < 0)
        ocirun_problems_add (p, "hooks.%s[%zu].path: `%s`: %s", kind, i, path, strerror (errno));
      else if (!S_ISREG (st.st_mode) || access (path, X_OK) < 0)
        ocirun_problems_add (p, "hooks.%s[%zu].path: `%s` is not an executable file", kind, i, path);
      if (hooks[i]->has_timeout && hooks[i]->timeout <= 0)
        ocirun_problems_add (p, "hooks.%s[%zu].timeout: must be greater than zero, got %d", kind, i,
                             (int)hooks[i]->timeout);
    }
}

static void
check_hooks (struct ocirun_problems *p, const oci_hooks *h)
{
  if (h == NULL)
    return;
  check_hook_list (p, "prestart", h->prestart, h->prestart_len);
  check_hook_list (p, "createRuntime", h->create_runtime, h->create_runtime_len);
  check_hook_list (p, "createContainer", h->create_container, h->create_container_len);
  check_hook_list (p, "startContainer", h->start_container, h->start_container_len);
  check_hook_list (p, "poststart", h->poststart, h->poststart_len);
  check_hook_list (p, "poststop", h->poststop, h->poststop_len);
}

static void
check_caps (struct ocirun_problems *p, const char *set, char **caps, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (!capability_known (caps[i]))
      ocirun_problems_add (p, "process.capabilities.%s[%zu]: unknown capability `%s`", set, i, caps[i]);
}

static void
check_process (struct ocirun_problems *p, const oci_process *proc)
{
  if (proc->args_len == 0 && proc->command_line == NULL)
    ocirun_problems_add (p, "process.args: must contain at least one element");
  if (proc->cwd[0] != '/')
    ocirun_problems_add (p, "process.cwd: `%s` is not an absolute path", proc->cwd);
  if (proc->user && proc->user->has_umask && proc->user->umask > 0777)
    ocirun_problems_add (p, "process.user.umask: %#o is larger than 0777", (unsigned)proc->user->umask);
  if (proc->has_oom_score_adj && (proc->oom_score_adj < -1000 || proc->oom_score_adj > 1000))
    ocirun_problems_add (p, "process.oomScoreAdj: %d is outside [-1000, 1000]", (int)proc->oom_score_adj);

  for (size_t i = 0; i < proc->rlimits_len; i++)
    {
      const oci_rlimit *r = proc->rlimits[i];
      if (!in_list (rlimit_names, r->type))
        ocirun_problems_add (p, "process.rlimits[%zu].type: unknown rlimit `%s`", i, r->type);
      if (r->soft > r->hard)
        ocirun_problems_add (p, "process.rlimits[%zu]: soft limit %llu is larger than hard limit %llu", i,
                             (unsigned long long)r->soft, (unsigned long long)r->hard);
      for (size_t j = 0; j < i; j++)
        if (strcmp (proc->rlimits[j]->type, r->type) == 0)
          ocirun_problems_add (p, "process.rlimits[%zu].type: `%s` is set more than once", i, r->type);
    }

  if (proc->capabilities)
    {
      check_caps (p, "bounding", proc->capabilities->bounding, proc->capabilities->bounding_len);
      check_caps (p, "effective", proc->capabilities->effective, proc->capabilities->effective_len);
      check_caps (p, "inheritable", proc->capabilities->inheritable, proc->capabilities->inheritable_len);
      check_caps (p, "permitted", proc->capabilities->permitted, proc->capabilities->permitted_len);
      check_caps (p, "ambient", proc->capabilities->ambient, proc->capabilities->ambient_len);
    }

  if (proc->scheduler)
    {
      if (!in_list (sched_policies, proc->scheduler->policy))
        ocirun_problems_add (p, "process.scheduler.policy: unknown policy `%s`", proc->scheduler->policy);
      for (size_t i = 0; i < proc->scheduler->flags_len; i++)
        if (!in_list (sched_flags, proc->scheduler->flags[i]))
          ocirun_problems_add (p, "process.scheduler.flags[%zu]: unknown flag `%s`", i, proc->scheduler->flags[i]);
    }

  if (proc->io_priority)
    {
      if (!in_list (ioprio_classes, proc->io_priority->class))
        ocirun_problems_add (p, "process.ioPriority.class: unknown class `%s`", proc->io_priority->class);
      if (proc->io_priority->has_priority && (proc->io_priority->priority < 0 || proc->io_priority->priority > 7))
        ocirun_problems_add (p, "process.ioPriority.priority: %d is outside [0, 7]", (int)proc->io_priority->priority);
    }
}

static void
check_namespaces (struct ocirun_problems *p, const oci_config *c, bool rootless)
{
  const oci_linux *l = c->linux;
  struct ns_info user = find_ns (c, "user");
  bool has_uid_maps = l && l->uid_mappings_len > 0;
  bool has_gid_maps = l && l->gid_mappings_len > 0;

  if (l)
    for (size_t i = 0; i < l->namespaces_len; i++)
      {
        const char *type = l->namespaces[i]->type;
        if (!in_list (namespace_types, type))
          ocirun_problems_add (p, "linux.namespaces[%zu].type: unknown namespace type `%s`", i, type);
        for (size_t j = 0; j < i; j++)
          if (strcmp (l->namespaces[j]->type, type) == 0)
            ocirun_problems_add (p, "linux.namespaces[%zu].type: namespace `%s` is listed more than once", i, type);
      }

  if (user.new_ns && !(has_uid_maps && has_gid_maps))
    ocirun_problems_add (p, "linux.uidMappings, linux.gidMappings: a new user namespace needs both mappings");
  if (!user.present && (has_uid_maps || has_gid_maps))
    ocirun_problems_add (p, "linux.uidMappings, linux.gidMappings: mappings are set but there is no user namespace");
  if (rootless && !user.present)
    ocirun_problems_add (p, "linux.namespaces: a rootless container needs a user namespace");

  if (c->hostname && c->hostname[0] && !find_ns (c, "uts").present)
    ocirun_problems_add (p, "hostname: cannot be set without a uts namespace");
  if (c->domainname && c->domainname[0] && !find_ns (c, "uts").present)
    ocirun_problems_add (p, "domainname: cannot be set without a uts namespace");
  if (l && l->time_offsets && l->time_offsets->len > 0 && !find_ns (c, "time").new_ns)
    ocirun_problems_add (p, "linux.timeOffsets: need a new time namespace");
}

static void
check_sysctl (struct ocirun_problems *p, const oci_config *c)
{
  const oci_map_string *m = c->linux ? c->linux->sysctl : NULL;

  if (m == NULL)
    return;
  for (size_t i = 0; i < m->len; i++)
    {
      const char *k = m->keys[i];
      if (in_list (ipc_sysctls, k) || strncmp (k, "fs.mqueue.", 10) == 0)
        {
          if (!find_ns (c, "ipc").present)
            ocirun_problems_add (p, "linux.sysctl: `%s` needs an ipc namespace", k);
        }
      else if (strncmp (k, "net.", 4) == 0)
        {
          if (!find_ns (c, "network").present)
            ocirun_problems_add (p, "linux.sysctl: `%s` needs a network namespace", k);
        }
      else if (strcmp (k, "kernel.hostname") == 0 || strcmp (k, "kernel.domainname") == 0)
        {
          if (!find_ns (c, "uts").present)
            ocirun_problems_add (p, "linux.sysctl: `%s` needs a uts namespace", k);
        }
      else
        ocirun_problems_add (p, "linux.sysctl: `%s` is not in a separate kernel namespace", k);
    }
}

static void
check_seccomp (struct ocirun_problems *p, const oci_seccomp *s)
{
  cleanup_error ocirun_error_t lerr = NULL;

  if (s == NULL)
    return;
  if (ocirun_seccomp_prepare (&lerr) < 0)
    {
      ocirun_problems_add (p, "linux.seccomp: %s", lerr->msg);
      return;
    }
  if (!in_list (seccomp_actions, s->default_action))
    ocirun_problems_add (p, "linux.seccomp.defaultAction: unknown action `%s`", s->default_action);
  for (size_t i = 0; i < s->architectures_len; i++)
    if (!arch_known (s->architectures[i]))
      ocirun_problems_add (p, "linux.seccomp.architectures[%zu]: unknown architecture `%s`", i, s->architectures[i]);
  for (size_t i = 0; i < s->flags_len; i++)
    if (!in_list (seccomp_flags, s->flags[i]))
      ocirun_problems_add (p, "linux.seccomp.flags[%zu]: unknown flag `%s`", i, s->flags[i]);
  for (size_t i = 0; i < s->syscalls_len; i++)
    {
      const oci_syscall *sc = s->syscalls[i];
      if (!in_list (seccomp_actions, sc->action))
        ocirun_problems_add (p, "linux.seccomp.syscalls[%zu].action: unknown action `%s`", i, sc->action);
      for (size_t j = 0; j < sc->args_len; j++)
        {
          if (!in_list (seccomp_ops, sc->args[j]->op))
            ocirun_problems_add (p, "linux.seccomp.syscalls[%zu].args[%zu].op: unknown operator `%s`", i, j,
                                 sc->args[j]->op);
          if (sc->args[j]->index > 5)
            ocirun_problems_add (p, "linux.seccomp.syscalls[%zu].args[%zu].index: %u is larger than 5", i, j,
                                 (unsigned)sc->args[j]->index);
        }
    }
}

static void
check_linux (struct ocirun_problems *p, const oci_linux *l)
{
  if (l->rootfs_propagation && l->rootfs_propagation[0] && !in_list (propagations, l->rootfs_propagation))
    ocirun_problems_add (p, "linux.rootfsPropagation: unknown propagation `%s`", l->rootfs_propagation);

  for (size_t i = 0; i < l->devices_len; i++)
    {
      const oci_device *d = l->devices[i];
      if (strlen (d->type) != 1 || strchr ("cbup", d->type[0]) == NULL)
        ocirun_problems_add (p, "linux.devices[%zu].type: `%s` is not one of c, b, u, p", i, d->type);
      if (d->path[0] != '/')
        ocirun_problems_add (p, "linux.devices[%zu].path: `%s` is not an absolute path", i, d->path);
      if (strcmp (d->type, "p") != 0 && !(d->has_major && d->has_minor))
        ocirun_problems_add (p, "linux.devices[%zu]: major and minor are required for type `%s`", i, d->type);
    }

  if (l->personality && !in_list (personality_domains, l->personality->domain))
    ocirun_problems_add (p, "linux.personality.domain: unknown domain `%s`", l->personality->domain);

  if (l->memory_policy)
    {
      if (!in_list (mpol_modes, l->memory_policy->mode))
        ocirun_problems_add (p, "linux.memoryPolicy.mode: unknown mode `%s`", l->memory_policy->mode);
      for (size_t i = 0; i < l->memory_policy->flags_len; i++)
        if (!in_list (mpol_flags, l->memory_policy->flags[i]))
          ocirun_problems_add (p, "linux.memoryPolicy.flags[%zu]: unknown flag `%s`", i, l->memory_policy->flags[i]);
    }

  if (l->net_devices)
    {
      bool netns = false;
      cleanup_error ocirun_error_t e = NULL;
      for (size_t i = 0; i < l->namespaces_len; i++)
        netns |= strcmp (l->namespaces[i]->type, "network") == 0;
      if (ocirun_netdev_validate (l, netns, &e) < 0)
        ocirun_problems_add (p, "%s", e->msg);
    }
  if (l->intel_rdt && l->intel_rdt->clos_id
      && (strchr (l->intel_rdt->clos_id, '/') || strcmp (l->intel_rdt->clos_id, ".") == 0
          || strcmp (l->intel_rdt->clos_id, "..") == 0 || l->intel_rdt->clos_id[0] == '\0'))
    ocirun_problems_add (p, "linux.intelRdt.closID: invalid name `%s`", l->intel_rdt->clos_id);

  check_seccomp (p, l->seccomp);
}

static void
check_root (struct ocirun_problems *p, int bundle_fd, const oci_root *root)
{
  struct stat st;

  if (root == NULL)
    {
      ocirun_problems_add (p, "root: missing");
      return;
    }
  /* An absolute root.path ignores bundle_fd, a relative one is resolved in
   * the bundle, as the runtime will do. */
  if (fstatat (bundle_fd, root->path, &st, 0) < 0)
    ocirun_problems_add (p, "root.path: `%s`: %s", root->path, strerror (errno));
  else if (!S_ISDIR (st.st_mode))
    ocirun_problems_add (p, "root.path: `%s` is not a directory", root->path);
}

static void
check_config (struct ocirun_problems *p, int bundle_fd, const oci_config *c, bool rootless)
{
  if (strncmp (c->oci_version, "1.", 2) != 0)
    ocirun_problems_add (p, "ociVersion: `%s` is not supported (the major version must be 1)", c->oci_version);

  check_root (p, bundle_fd, c->root);

  if (c->process == NULL)
    ocirun_problems_add (p, "process: missing (the container has nothing to run)");
  else
    check_process (p, c->process);

  for (size_t i = 0; i < c->mounts_len; i++)
    if (c->mounts[i]->destination[0] != '/')
      ocirun_problems_add (p, "mounts[%zu].destination: `%s` is not an absolute path", i, c->mounts[i]->destination);

  check_hooks (p, c->hooks);
  check_namespaces (p, c, rootless);
  check_sysctl (p, c);
  if (c->linux)
    check_linux (p, c->linux);
}

int
ocirun_check_bundle (const char *bundle, const char *config_file, bool rootless, struct ocirun_problems *problems,
                     ocirun_error_t *err)
{
  cleanup_close int bundle_fd = -1;
  cleanup_free char *data = NULL;
  ocispec_errors errs = { NULL, 0 };
  oci_config *c;
  size_t len = 0, before = problems->len;
  int ret;

  if (bundle == NULL)
    bundle = ".";
  if (config_file == NULL)
    config_file = "config.json";

  bundle_fd = open (bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (bundle_fd < 0)
    return ocirun_make_error (err, errno, "open bundle `%s`", bundle);

  ret = ocirun_read_file_at (bundle_fd, config_file, &data, &len, err);
  if (ret < 0)
    {
      ocirun_problems_add (problems, "%s: %s", config_file, (*err)->msg);
      ocirun_error_free (err);
      return (int)(problems->len - before);
    }

  c = oci_config_parse_data (data, len, &errs);
  for (size_t i = 0; i < errs.len; i++)
    ocirun_problems_add (problems, "%s: %s", config_file, errs.msgs[i]);
  ocispec_errors_free (&errs);
  if (c == NULL)
    {
      if (problems->len == before)
        ocirun_problems_add (problems, "%s: cannot be parsed", config_file);
      return (int)(problems->len - before);
    }

  check_config (problems, bundle_fd, c, rootless);
  oci_config_free (c);
  return (int)(problems->len - before);
}
