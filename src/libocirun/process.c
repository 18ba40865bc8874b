/* The last steps of a container process before execve, in runc's order
 * (standard_init / setns_init): process attributes, LSM labels,
 * no_new_privs, seccomp, user and capabilities, cwd, the wait for `start`,
 * then execve. Used for the container's init and for `exec`. */
#include "config.h"
#include "caps.h"
#include "passwd.h"
#include "seccomp-filter.h"
#include "security.h"
#include "setup.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

struct name_value
{
  const char *name;
  unsigned long value;
};

static bool
lookup_name (const struct name_value *table, size_t n, const char *name, unsigned long *out)
{
  size_t i;

  for (i = 0; name && i < n; i++)
    if (strcmp (table[i].name, name) == 0)
      {
        *out = table[i].value;
        return true;
      }
  return false;
}
#define LOOKUP(table, name, out) lookup_name (table, sizeof (table) / sizeof (table[0]), name, out)

/* ---- lists of ids: "0-3,5" ---- */

static int
parse_id_list (const char *s, unsigned long *bits, size_t nbits, const char *what, ocirun_error_t *err)
{
  const size_t word = sizeof (unsigned long) * CHAR_BIT;
  const char *p = s;
  bool any = false;

  memset (bits, 0, nbits / CHAR_BIT);
  if (s == NULL)
    return ocirun_make_error (err, -EINVAL, "invalid %s list `(null)`", what);
  for (;;)
    {
      unsigned long lo, hi, i;
      char *end;

      while (*p == ' ' || *p == '\t')
        p++;
      if (*p == '\0' && !any)
        break;
      if (*p < '0' || *p > '9')
        goto invalid;
      errno = 0;
      lo = strtoul (p, &end, 10);
      if (errno || end == p)
        goto invalid;
      hi = lo;
      p = end;
      if (*p == '-')
        {
          p++;
          if (*p < '0' || *p > '9')
            goto invalid;
          hi = strtoul (p, &end, 10);
          if (errno || end == p)
            goto invalid;
          p = end;
        }
      if (lo > hi)
        goto invalid;
      if (hi >= nbits)
        return ocirun_make_error (err, -EINVAL, "invalid %s list `%s`: %lu is too large", what, s, hi);
      for (i = lo; i <= hi; i++)
        bits[i / word] |= 1UL << (i % word);
      any = true;
      while (*p == ' ' || *p == '\t')
        p++;
      if (*p == '\0')
        break;
      if (*p != ',')
        goto invalid;
      p++;
    }
  return 0;

invalid:
  return ocirun_make_error (err, -EINVAL, "invalid %s list `%s`", what, s);
}

int
ocirun_parse_cpu_list (const char *s, cpu_set_t *set, ocirun_error_t *err)
{
  unsigned long bits[CPU_SETSIZE / (sizeof (unsigned long) * CHAR_BIT)];
  size_t i;
  int ret;

  ret = parse_id_list (s, bits, CPU_SETSIZE, "cpu", err);
  if (ret < 0)
    return ret;
  CPU_ZERO (set);
  for (i = 0; i < CPU_SETSIZE; i++)
    if (bits[i / (sizeof (unsigned long) * CHAR_BIT)] & (1UL << (i % (sizeof (unsigned long) * CHAR_BIT))))
      CPU_SET (i, set);
  return 0;
}

/* ---- process attributes ---- */

static const struct name_value rlimits[] = {
  { "RLIMIT_AS", RLIMIT_AS },
  { "RLIMIT_CORE", RLIMIT_CORE },
  { "RLIMIT_CPU", RLIMIT_CPU },
  { "RLIMIT_DATA", RLIMIT_DATA },
  { "RLIMIT_FSIZE", RLIMIT_FSIZE },
  { "RLIMIT_LOCKS", RLIMIT_LOCKS },
  { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
  { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
  { "RLIMIT_NICE", RLIMIT_NICE },
  { "RLIMIT_NOFILE", RLIMIT_NOFILE },
  { "RLIMIT_NPROC", RLIMIT_NPROC },
  { "RLIMIT_RSS", RLIMIT_RSS },
  { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
  { "RLIMIT_RTTIME", RLIMIT_RTTIME },
  { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
  { "RLIMIT_STACK", RLIMIT_STACK },
};

static int
apply_rlimits (const oci_process *process, ocirun_error_t *err)
{
  size_t i;

  for (i = 0; i < process->rlimits_len; i++)
    {
      const oci_rlimit *r = process->rlimits[i];
      struct rlimit rl;
      unsigned long res;

      if (!LOOKUP (rlimits, r->type, &res))
        return ocirun_make_error (err, -EINVAL, "unknown rlimit type `%s`", r->type ? r->type : "(null)");
      if (r->soft > r->hard)
        return ocirun_make_error (err, -EINVAL, "setrlimit `%s`: soft limit %" PRIu64 " above hard limit %" PRIu64,
                                  r->type, r->soft, r->hard);
      rl.rlim_cur = (rlim_t)r->soft;
      rl.rlim_max = (rlim_t)r->hard;
      /* Raising a hard limit needs CAP_SYS_RESOURCE in the initial user
       * namespace: EPERM here is the host's decision, named plainly. */
      if (setrlimit ((int)res, &rl) < 0)
        return ocirun_make_error (err, errno, "setrlimit `%s`", r->type);
    }
  return 0;
}

static int
write_proc_self (const char *name, const char *value, ocirun_error_t *err)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  struct statfs sfs;

  xasprintf (&path, "/proc/self/%s", name);
  fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  if (fd < 0)
    return ocirun_make_error (err, errno, "open `%s`", path);
  if (fstatfs (fd, &sfs) < 0)
    return ocirun_make_error (err, errno, "statfs `%s`", path);
  if (sfs.f_type != PROC_SUPER_MAGIC)
    return ocirun_make_error (err, EPERM, "`%s` is not on procfs", path);
  if (TEMP_FAILURE_RETRY_INT (write (fd, value, strlen (value))) < 0)
    return ocirun_make_error (err, errno, "write `%s` to `%s`", value, path);
  return 0;
}

static int
apply_oom_score_adj (const oci_process *process, ocirun_error_t *err)
{
  char buf[16];

  if (!process->has_oom_score_adj)
    return 0;
  snprintf (buf, sizeof (buf), "%d", process->oom_score_adj);
  if (write_proc_self ("oom_score_adj", buf, err) < 0)
    return ocirun_error_prefix (err, "set oomScoreAdj");
  return 0;
}

static int
apply_personality (const oci_personality *p, ocirun_error_t *err)
{
  unsigned long persona;

  if (p == NULL)
    return 0;
  if (p->domain && strcmp (p->domain, "LINUX") == 0)
    persona = PER_LINUX;
  else if (p->domain && strcmp (p->domain, "LINUX32") == 0)
    persona = PER_LINUX32;
  else
    return ocirun_make_error (err, -EINVAL, "personality: unknown domain `%s`", p->domain ? p->domain : "(null)");
  /* personality.flags: the spec defines no values yet; ignored like runc. */
  if (personality (persona) < 0)
    return ocirun_make_error (err, errno, "personality `%s`", p->domain);
  return 0;
}

/* glibc before 2.41 has no sched_setattr: the kernel's VER0 layout. */
struct ocirun_sched_attr
{
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

static const struct name_value sched_policies[] = {
  { "SCHED_OTHER", 0 }, { "SCHED_FIFO", 1 }, { "SCHED_RR", 2 },       { "SCHED_BATCH", 3 },
  { "SCHED_ISO", 4 },   { "SCHED_IDLE", 5 }, { "SCHED_DEADLINE", 6 },
};

static const struct name_value sched_flags[] = {
  { "SCHED_FLAG_RESET_ON_FORK", 0x01 },  { "SCHED_FLAG_RECLAIM", 0x02 },     { "SCHED_FLAG_DL_OVERRUN", 0x04 },
  { "SCHED_FLAG_KEEP_POLICY", 0x08 },    { "SCHED_FLAG_KEEP_PARAMS", 0x10 }, { "SCHED_FLAG_UTIL_CLAMP_MIN", 0x20 },
  { "SCHED_FLAG_UTIL_CLAMP_MAX", 0x40 },
};

static int
apply_scheduler (const oci_scheduler *s, ocirun_error_t *err)
{
  struct ocirun_sched_attr attr;
  unsigned long v;
  size_t i;

  if (s == NULL)
    return 0;
  memset (&attr, 0, sizeof (attr));
  attr.size = sizeof (attr);
  if (!LOOKUP (sched_policies, s->policy, &v))
    return ocirun_make_error (err, -EINVAL, "scheduler: unknown policy `%s`", s->policy ? s->policy : "(null)");
  attr.sched_policy = (uint32_t)v;
  for (i = 0; i < s->flags_len; i++)
    {
      if (!LOOKUP (sched_flags, s->flags[i], &v))
        return ocirun_make_error (err, -EINVAL, "scheduler: unknown flag `%s`", s->flags[i]);
      attr.sched_flags |= v;
    }
  attr.sched_nice = s->nice;
  attr.sched_priority = (uint32_t)s->priority;
  attr.sched_runtime = s->runtime;
  attr.sched_deadline = s->deadline;
  attr.sched_period = s->period;
  if (syscall (SYS_sched_setattr, 0, &attr, 0) < 0)
    return ocirun_make_error (err, errno, "scheduler: sched_setattr `%s`", s->policy);
  return 0;
}

#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

static const struct name_value ioprio_classes[] = {
  { "IOPRIO_CLASS_RT", 1 },
  { "IOPRIO_CLASS_BE", 2 },
  { "IOPRIO_CLASS_IDLE", 3 },
};

static int
apply_io_priority (const oci_io_priority *io, ocirun_error_t *err)
{
  unsigned long cls;

  if (io == NULL)
    return 0;
  if (!LOOKUP (ioprio_classes, io->class, &cls))
    return ocirun_make_error (err, -EINVAL, "ioPriority: unknown class `%s`", io->class ? io->class : "(null)");
  if (io->priority < 0 || io->priority > 7)
    return ocirun_make_error (err, -EINVAL, "ioPriority: priority %d out of range 0-7", io->priority);
  if (syscall (SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (int)(cls << IOPRIO_CLASS_SHIFT) | io->priority) < 0)
    return ocirun_make_error (err, errno, "ioPriority: ioprio_set `%s` %d", io->class, io->priority);
  return 0;
}

static const struct name_value mpol_modes[] = {
  { "MPOL_DEFAULT", 0 },
  { "MPOL_PREFERRED", 1 },
  { "MPOL_BIND", 2 },
  { "MPOL_INTERLEAVE", 3 },
  { "MPOL_LOCAL", 4 },
  { "MPOL_PREFERRED_MANY", 5 },
  { "MPOL_WEIGHTED_INTERLEAVE", 6 },
};

static const struct name_value mpol_flags[] = {
  { "MPOL_F_NUMA_BALANCING", 1 << 13 },
  { "MPOL_F_RELATIVE_NODES", 1 << 14 },
  { "MPOL_F_STATIC_NODES", 1 << 15 },
};

#define MPOL_MAX_NODES 1024

static int
apply_memory_policy (const oci_memory_policy *mp, ocirun_error_t *err)
{
  unsigned long nodes[MPOL_MAX_NODES / (sizeof (unsigned long) * CHAR_BIT)];
  unsigned long mode, v;
  bool has_nodes = mp && mp->nodes && mp->nodes[0];
  size_t i;
  int ret;

  if (mp == NULL)
    return 0;
  if (!LOOKUP (mpol_modes, mp->mode, &mode))
    return ocirun_make_error (err, -EINVAL, "memoryPolicy: unknown mode `%s`", mp->mode ? mp->mode : "(null)");
  for (i = 0; i < mp->flags_len; i++)
    {
      if (!LOOKUP (mpol_flags, mp->flags[i], &v))
        return ocirun_make_error (err, -EINVAL, "memoryPolicy: unknown flag `%s`", mp->flags[i]);
      mode |= v;
    }
  if (has_nodes)
    {
      ret = parse_id_list (mp->nodes, nodes, MPOL_MAX_NODES, "node", err);
      if (ret < 0)
        return ocirun_error_prefix (err, "memoryPolicy");
    }
  /* maxnode counts one more than the bits passed (the kernel drops one). */
  if (syscall (SYS_set_mempolicy, (int)mode, has_nodes ? nodes : NULL, has_nodes ? MPOL_MAX_NODES + 1UL : 0UL) < 0)
    return ocirun_make_error (err, errno, "memoryPolicy: set_mempolicy `%s` nodes `%s`", mp->mode,
                              mp->nodes ? mp->nodes : "");
  return 0;
}

static int
apply_cpu_affinity (const char *list, ocirun_error_t *err)
{
  cpu_set_t set;
  int ret;

  if (list == NULL || list[0] == '\0')
    return 0;
  ret = ocirun_parse_cpu_list (list, &set, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "execCPUAffinity");
  if (sched_setaffinity (0, sizeof (set), &set) < 0)
    return ocirun_make_error (err, errno, "execCPUAffinity: sched_setaffinity `%s`", list);
  return 0;
}

/* ---- user ---- */

/* HOME for a process whose env has none: the passwd entry of uid in the
 * container's /etc/passwd, else "/" (what runc does). */
static char *
home_of (uid_t uid)
{
  char *home = ocirun_passwd_lookup ("/etc/passwd", uid, OCIRUN_PASSWD_HOME);

  if (home && home[0])
    return home;
  free (home);
  return xstrdup ("/");
}

/* The container user must be able to reopen its stdio (/dev/stdout,
 * /proc/self/fd/1): hand their ownership over, as runc does, except for
 * /dev/null and fds whose owner this user namespace cannot change. */
static int
fix_stdio_ownership (uid_t uid, ocirun_error_t *err)
{
  struct stat null_st, st;
  bool have_null = stat ("/dev/null", &null_st) == 0;
  int fd;

  for (fd = 0; fd <= 2; fd++)
    {
      if (fstat (fd, &st) < 0)
        {
          if (errno == EBADF)
            continue;
          return ocirun_make_error (err, errno, "fstat fd %d", fd);
        }
      if (st.st_uid == uid || (have_null && S_ISCHR (st.st_mode) && st.st_rdev == null_st.st_rdev))
        continue;
      if (fchown (fd, uid, st.st_gid) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
        return ocirun_make_error (err, errno, "fchown fd %d to %u", fd, (unsigned)uid);
    }
  return 0;
}

static bool
setgroups_denied (void)
{
  cleanup_close int fd = open ("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
  char buf[16];
  ssize_t n;

  if (fd < 0)
    return false;
  n = read (fd, buf, sizeof (buf) - 1);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  return strncmp (buf, "deny", 4) == 0;
}

static int
switch_user (const oci_user *user, ocirun_error_t *err)
{
  int pdeath = 0;
  int ret;

  if (prctl (PR_GET_PDEATHSIG, &pdeath, 0, 0, 0) < 0)
    return ocirun_make_error (err, errno, "prctl PR_GET_PDEATHSIG");

  ret = fix_stdio_ownership (user->uid, err);
  if (ret < 0)
    return ret;

  /* setgroups is always called (with an empty list too) so that no host
   * group survives; it is impossible, and skipped, where the user namespace
   * denies it. */
  if (!setgroups_denied ())
    {
      cleanup_free gid_t *groups = NULL;
      size_t i;

      if (user->additional_gids_len)
        groups = xmalloc0 (user->additional_gids_len * sizeof (gid_t));
      for (i = 0; i < user->additional_gids_len; i++)
        groups[i] = user->additional_gids[i];
      if (setgroups (user->additional_gids_len, groups) < 0)
        return ocirun_make_error (err, errno, "setgroups");
    }

  if (setresgid (user->gid, user->gid, user->gid) < 0)
    {
      if (errno == EINVAL)
        return ocirun_make_error (err, errno, "setresgid %u (gid not mapped in the user namespace)", user->gid);
      return ocirun_make_error (err, errno, "setresgid %u", user->gid);
    }
  if (setresuid (user->uid, user->uid, user->uid) < 0)
    {
      if (errno == EINVAL)
        return ocirun_make_error (err, errno, "setresuid %u (uid not mapped in the user namespace)", user->uid);
      return ocirun_make_error (err, errno, "setresuid %u", user->uid);
    }

  /* A credential change clears the parent death signal. */
  if (pdeath && prctl (PR_SET_PDEATHSIG, pdeath, 0, 0, 0) < 0)
    return ocirun_make_error (err, errno, "prctl PR_SET_PDEATHSIG");
  return 0;
}

/* ---- exec ---- */

static const char *
env_get (char **env, const char *name)
{
  size_t n = strlen (name);

  for (; env && *env; env++)
    if (strncmp (*env, name, n) == 0 && (*env)[n] == '=')
      return *env + n + 1;
  return NULL;
}

/* Go's exec.LookPath semantics (runc): a name with '/' is used as is, else
 * every $PATH entry of the container's env ("" meaning "."); a candidate is
 * any non-directory with an x bit. */
static int
find_executable (const char *name, char **env, char **out, ocirun_error_t *err)
{
  const char *path;
  struct stat st;

  if (strchr (name, '/'))
    {
      if (stat (name, &st) < 0)
        return ocirun_make_error (err, errno, "exec: \"%s\": stat %s", name, name);
      if (S_ISDIR (st.st_mode))
        return ocirun_make_error (err, EISDIR, "exec: \"%s\"", name);
      if (!(st.st_mode & 0111))
        return ocirun_make_error (err, EACCES, "exec: \"%s\"", name);
      *out = xstrdup (name);
      return 0;
    }

  path = env_get (env, "PATH");
  while (path && name[0])
    {
      size_t n = strcspn (path, ":");
      cleanup_free char *candidate = NULL;

      xasprintf (&candidate, "%.*s/%s", (int)(n ? n : 1), n ? path : ".", name);
      if (stat (candidate, &st) == 0 && !S_ISDIR (st.st_mode) && (st.st_mode & 0111))
        {
          *out = steal_pointer (&candidate);
          return 0;
        }
      if (path[n] == '\0')
        break;
      path += n + 1;
    }
  return ocirun_make_error (err, -ENOENT, "exec: \"%s\": executable file not found in $PATH", name);
}

/* process.env, plus HOME when it has none. */
static char **
build_env (char **env, size_t env_len, uid_t uid)
{
  char **out;
  size_t i, n = 0;

  out = xmalloc0 ((env_len + 2) * sizeof (char *));
  for (i = 0; i < env_len && env && env[i]; i++)
    out[n++] = xstrdup (env[i]);
  if (env_get (out, "HOME") == NULL)
    {
      cleanup_free char *home = home_of (uid);
      xasprintf (&out[n++], "HOME=%s", home);
    }
  out[n] = NULL;
  return out;
}

static int
load_seccomp (const oci_seccomp *seccomp, struct ocirun_exec_hooks *hooks, ocirun_error_t *err)
{
  int fd = -1;
  int ret;

  ret = ocirun_seccomp_load (seccomp, &fd, err);
  if (ret < 0)
    return ret;
  if (fd < 0)
    return 0;
  if (hooks == NULL || hooks->seccomp_listener == NULL)
    {
      /* Nobody to hand it to: closing it makes notified syscalls fail
       * with ENOSYS rather than block forever. */
      close (fd);
      return 0;
    }
  return hooks->seccomp_listener (hooks->data, fd, err);
}

static int
do_chdir (const char *cwd, ocirun_error_t *err)
{
  char buf[PATH_MAX];

  if (chdir (cwd) < 0)
    return ocirun_make_error (err, errno, "chdir to cwd (`%s`) set in config.json failed", cwd);
  /* A cwd outside the container's root (reached through a leaked fd or a
   * magic link) has no path from the root: getcwd says so. */
  if (getcwd (buf, sizeof buf) == NULL || buf[0] != '/')
    return ocirun_make_error (err, -EPERM, "cwd `%s` is outside the container's root filesystem", cwd);
  return 0;
}

int
ocirun_process_exec (const oci_config *config, const oci_process *process, bool init, struct ocirun_exec_hooks *hooks,
                     ocirun_error_t *err)
{
  const oci_linux *linux_ = config ? config->linux : NULL;
  const oci_seccomp *seccomp = linux_ ? linux_->seccomp : NULL;
  static const oci_user root_user = { 0 };
  const oci_user *user;
  cleanup_strv char **envp = NULL;
  cleanup_free char *exe = NULL;
  bool nnp, early_seccomp, cwd_done = false;
  int ret;

  if (process == NULL)
    return ocirun_make_error (err, -EINVAL, "no process in the config");
  if (process->args == NULL || process->args_len == 0 || process->args[0] == NULL || process->args[0][0] == '\0')
    return ocirun_make_error (err, -EINVAL, "process.args must not be empty");
  user = process->user ? process->user : &root_user;
  nnp = process->has_no_new_privileges && process->no_new_privileges;
  /* The notify listener goes to the runtime, which is only there until
   * wait_start: a filter with a listener loads before it even with NNP. */
  early_seccomp = seccomp && (!nnp || (init && ocirun_seccomp_uses_notify (seccomp)));

  /* 1. attributes that still need the runtime's privileges */
  ret = apply_rlimits (process, err);
  if (ret == 0)
    ret = apply_oom_score_adj (process, err);
  if (ret == 0)
    ret = apply_personality (linux_ ? linux_->personality : NULL, err);
  if (ret == 0)
    ret = apply_scheduler (process->scheduler, err);
  if (ret == 0)
    ret = apply_io_priority (process->io_priority, err);
  if (ret == 0)
    ret = apply_memory_policy (linux_ ? linux_->memory_policy : NULL, err);
  if (ret < 0)
    return ret;

  /* 2. LSM labels take effect at execve; AppArmor before no_new_privs,
   * which would restrict the profile transition. */
  ret = ocirun_apparmor_exec_profile (process->apparmor_profile, err);
  if (ret == 0)
    ret = ocirun_selinux_exec_label (process->selinux_label, err);
  if (ret < 0)
    return ret;

  /* 3. */
  if (nnp && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return ocirun_make_error (err, errno, "prctl PR_SET_NO_NEW_PRIVS");

  /* 4. Without no_new_privs loading a filter needs CAP_SYS_ADMIN, which is
   * about to go. */
  if (early_seccomp)
    {
      ret = load_seccomp (seccomp, hooks, err);
      if (ret < 0)
        return ret;
    }

  /* 5. user, capabilities, cwd. The init creates a missing cwd as root
   * (runc does it while preparing the rootfs). chdir is tried as root first
   * and, only if that fails, again as the new user, who may be the only one
   * let in (root-squashed network filesystems). */
  if (process->cwd == NULL || process->cwd[0] != '/')
    return ocirun_make_error (err, -EINVAL, "process.cwd `%s` must be an absolute path",
                              process->cwd ? process->cwd : "");
  if (init)
    {
      struct stat st;
      if (stat (process->cwd, &st) < 0 && errno == ENOENT)
        {
          ret = ocirun_mkdir_p (process->cwd, 0755, err);
          if (ret < 0)
            return ocirun_error_prefix (err, "create cwd `%s`", process->cwd);
        }
    }
  if (chdir (process->cwd) == 0)
    cwd_done = true;

  envp = build_env (process->env, process->env_len, user->uid);

  ret = ocirun_caps_apply_bounding (process->capabilities, err);
  if (ret < 0)
    return ret;
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return ocirun_make_error (err, errno, "prctl PR_SET_KEEPCAPS");
  ret = switch_user (user, err);
  if (ret < 0)
    return ret;
  if (!cwd_done)
    {
      ret = do_chdir (process->cwd, err);
      if (ret < 0)
        return ret;
    }
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return ocirun_make_error (err, errno, "prctl PR_SET_KEEPCAPS");
  ret = ocirun_caps_apply (process->capabilities, err);
  if (ret < 0)
    return ret;
  umask (user->has_umask ? (mode_t)user->umask : 0022);

  /* 6. A missing binary must fail `create`, not `start`. */
  ret = find_executable (process->args[0], envp, &exe, err);
  if (ret < 0)
    return ret;
  if (faccessat (AT_FDCWD, exe, X_OK, AT_EACCESS) < 0)
    return ocirun_make_error (err, errno, "exec %s", exe);

  /* 7. */
  if (init && hooks && hooks->wait_start)
    {
      ret = hooks->wait_start (hooks->data, err);
      if (ret < 0)
        return ret;
    }
  if (init && hooks && hooks->start_container)
    {
      ret = hooks->start_container (hooks->data, err);
      if (ret < 0)
        return ret;
    }

  /* 8. */
  ret = apply_cpu_affinity (process->exec_cpu_affinity ? process->exec_cpu_affinity->initial : NULL, err);
  if (ret < 0)
    return ret;
  if (seccomp && !early_seccomp)
    {
      /* As late as possible: every syscall after this point must pass the
       * filter. */
      ret = load_seccomp (seccomp, hooks, err);
      if (ret < 0)
        return ret;
    }

  execve (exe, process->args, envp);
  return ocirun_make_error (err, errno, "exec %s", exe);
}
