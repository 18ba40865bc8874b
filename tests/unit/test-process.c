/* The process room: every case runs in a forked child (the settings are
 * irreversible), which reports what it observes through a pipe; the parent
 * compares. Most cases let ocirun_process_exec apply everything and stop at
 * the PATH lookup of a binary that does not exist, then inspect the state
 * the process was left in. Needs root. */
#include "config.h"
#include "caps.h"
#include "seccomp-filter.h"

#include <seccomp.h>
#include "setup.h"
#include "unit.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define NO_SUCH_BINARY "ocirun-test-no-such-binary"
#define NOT_FOUND "exec: \"" NO_SUCH_BINARY "\": executable file not found in $PATH"

static oci_config *
parse_config (const char *process_extra, const char *linux_extra)
{
  cleanup_free char *json = NULL;
  ocispec_errors errs = { 0 };
  oci_config *c;
  size_t i;

  xasprintf (&json,
             "{\"ociVersion\":\"1.0.2\",\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"cwd\":\"/\","
             "\"args\":[\"" NO_SUCH_BINARY "\"],\"env\":[\"PATH=/usr/bin:/bin\"]%s%s},"
             "\"linux\":{%s}}",
             process_extra ? "," : "", process_extra ? process_extra : "", linux_extra ? linux_extra : "");
  c = oci_config_parse_data (json, strlen (json), &errs);
  for (i = 0; i < errs.len; i++)
    fprintf (stderr, "parse: %s\n", errs.msgs[i]);
  ocispec_errors_free (&errs);
  if (c == NULL)
    {
      fprintf (stderr, "bad test config: %s\n", json);
      abort ();
    }
  return c;
}

static void out (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static void
out (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vdprintf (STDOUT_FILENO, fmt, ap);
  va_end (ap);
}

typedef void (*child_fn) (oci_config *c, void *arg);

/* Runs fn in a child whose stdout and stderr are a pipe; returns what it
 * wrote, plus "[exit N]" / "[signal N]" when it did not exit 0. */
static char *
run_child (const char *process_extra, const char *linux_extra, child_fn fn, void *arg)
{
  oci_config *c = parse_config (process_extra, linux_extra);
  char *buf = xmalloc0 (1);
  size_t len = 0;
  int fds[2], status;
  pid_t pid;

  if (pipe2 (fds, O_CLOEXEC) < 0)
    abort ();
  pid = fork ();
  if (pid < 0)
    abort ();
  if (pid == 0)
    {
      int null = open ("/dev/null", O_RDWR);
      dup2 (null, 0);
      dup2 (fds[1], 1);
      dup2 (fds[1], 2);
      fn (c, arg);
      _exit (0);
    }
  close (fds[1]);
  for (;;)
    {
      char chunk[4096];
      ssize_t n = read (fds[0], chunk, sizeof (chunk));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      buf = xrealloc (buf, len + (size_t)n + 1);
      memcpy (buf + len, chunk, (size_t)n);
      len += (size_t)n;
      buf[len] = '\0';
    }
  close (fds[0]);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      char *tmp = NULL;
      xasprintf (&tmp, "%s[%s %d]", buf, WIFEXITED (status) ? "exit" : "signal",
                 WIFEXITED (status) ? WEXITSTATUS (status) : WTERMSIG (status));
      free (buf);
      buf = tmp;
    }
  oci_config_free (c);
  return buf;
}

/* process_exec must stop at the PATH lookup; anything else is reported. */
static bool
exec_until_lookup (oci_config *c, struct ocirun_exec_hooks *hooks)
{
  cleanup_error ocirun_error_t err = NULL;
  int ret = ocirun_process_exec (c, c->process, false, hooks, &err);

  if (ret == -ENOENT && err && strcmp (err->msg, NOT_FOUND) == 0)
    return true;
  out ("unexpected: ret=%d %s\n", ret, err ? err->msg : "(no error)");
  return false;
}

/* Reports the error process_exec fails with, and its errno. */
static void
child_error (oci_config *c, void *arg)
{
  cleanup_error ocirun_error_t err = NULL;
  int ret = ocirun_process_exec (c, c->process, arg != NULL, NULL, &err);

  out ("%s (%d)", err ? err->msg : "(no error)", -ret);
}

static void
status_lines (const char *prefixes)
{
  cleanup_fclose FILE *f = fopen ("/proc/self/status", "re");
  cleanup_free char *line = NULL;
  size_t cap = 0;

  while (f && getline (&line, &cap, f) > 0)
    {
      const char *p = prefixes;
      while (*p)
        {
          size_t n = strcspn (p, ",");
          if (strncmp (line, p, n) == 0 && line[n] == ':')
            out ("%s", line);
          p += n;
          if (*p == ',')
            p++;
        }
    }
}

/* ---- cases ---- */

static void
child_caps (oci_config *c, void *arg)
{
  if (exec_until_lookup (c, NULL))
    status_lines ("CapInh,CapPrm,CapEff,CapBnd,CapAmb");
}

static void
child_caps_lost (oci_config *c, void *arg)
{
  cap_t caps = cap_get_proc ();
  cap_value_t v = CAP_SYS_RESOURCE;

  cap_set_flag (caps, CAP_EFFECTIVE, 1, &v, CAP_CLEAR);
  cap_set_flag (caps, CAP_PERMITTED, 1, &v, CAP_CLEAR);
  if (cap_set_proc (caps) < 0)
    out ("cap_set_proc failed\n");
  cap_free (caps);
  child_error (c, arg);
}

static void
test_caps (void)
{
  const char *caps = "\"capabilities\":{\"bounding\":[\"CAP_CHOWN\",\"CAP_KILL\"],\"effective\":[\"CAP_CHOWN\"],"
                     "\"permitted\":[\"CAP_CHOWN\",\"CAP_KILL\"],\"inheritable\":[\"CAP_KILL\"],"
                     "\"ambient\":[\"CAP_KILL\"]}";
  const char *expected = "CapInh:\t0000000000000020\nCapPrm:\t0000000000000021\nCapEff:\t0000000000000001\n"
                         "CapBnd:\t0000000000000021\nCapAmb:\t0000000000000020\n";
  cleanup_free char *as_root = run_child (caps, NULL, child_caps, NULL);
  cleanup_free char *extra = NULL;
  cleanup_free char *as_user = NULL;
  cleanup_free char *none = NULL;
  cleanup_free char *unknown = NULL;
  cleanup_free char *lower = NULL;
  cleanup_free char *ambient_only = NULL;
  cleanup_free char *lost = NULL;

  CHECK_STREQ (as_root, expected);

  /* Non-root keeps exactly the listed sets across the uid switch. */
  xasprintf (&extra, "%s,\"user\":{\"uid\":1000,\"gid\":1000}", caps);
  as_user = run_child (extra, NULL, child_caps, NULL);
  CHECK_STREQ (as_user, expected);

  /* No capabilities object: everything goes, as with runc. */
  none = run_child (NULL, NULL, child_caps, NULL);
  CHECK_STREQ (none, "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
                     "CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\n");

  unknown = run_child ("\"capabilities\":{\"bounding\":[\"CAP_CHOWN\",\"CAP_FOO\"]}", NULL, child_error, NULL);
  CHECK_STREQ (unknown, "set capabilities: unknown capability `CAP_FOO` (22)");
  lower = run_child ("\"capabilities\":{\"effective\":[\"cap_chown\"]}", NULL, child_error, NULL);
  CHECK_STREQ (lower, "set capabilities: unknown capability `cap_chown` (22)");

  /* A capability the runtime does not have itself is named. */
  lost = run_child ("\"capabilities\":{\"bounding\":[\"CAP_SYS_RESOURCE\"],\"permitted\":[\"CAP_SYS_RESOURCE\"]}", NULL,
                    child_caps_lost, NULL);
  CHECK_STREQ (lost, "set capabilities: `CAP_SYS_RESOURCE` is not in the runtime's own permitted set: Operation not "
                     "permitted (1)");

  /* runc's default spec lists ambient caps that are not inheritable: the
   * kernel refuses them and runc goes on without. */
  ambient_only = run_child ("\"capabilities\":{\"bounding\":[\"CAP_KILL\"],\"permitted\":[\"CAP_KILL\"],"
                            "\"ambient\":[\"CAP_KILL\"]}",
                            NULL, child_caps, NULL);
  CHECK_STREQ (ambient_only, "CapInh:\t0000000000000000\nCapPrm:\t0000000000000020\nCapEff:\t0000000000000000\n"
                             "CapBnd:\t0000000000000020\nCapAmb:\t0000000000000000\n");
}

static void
child_user (oci_config *c, void *arg)
{
  uid_t r, e, s;
  gid_t rg, eg, sg, groups[16];
  int n, i;
  mode_t mask;

  if (!exec_until_lookup (c, NULL))
    return;
  getresuid (&r, &e, &s);
  getresgid (&rg, &eg, &sg);
  out ("uid=%u,%u,%u gid=%u,%u,%u groups=", r, e, s, rg, eg, sg);
  n = getgroups (16, groups);
  for (i = 0; i < n; i++)
    out ("%s%u", i ? "," : "", groups[i]);
  mask = umask (0);
  out (" umask=%03o\n", (unsigned)mask);
}

static void
test_user (void)
{
  cleanup_free char *user = run_child ("\"user\":{\"uid\":1000,\"gid\":1001,\"additionalGids\":[10,20],\"umask\":23}",
                                       NULL, child_user, NULL);
  cleanup_free char *root = run_child (NULL, NULL, child_user, NULL);

  CHECK_STREQ (user, "uid=1000,1000,1000 gid=1001,1001,1001 groups=10,20 umask=027\n");
  /* Host groups never leak in; the default umask is 0022. */
  CHECK_STREQ (root, "uid=0,0,0 gid=0,0,0 groups= umask=022\n");
}

static void
child_rlimits (oci_config *c, void *arg)
{
  struct rlimit nofile, core;

  if (!exec_until_lookup (c, NULL))
    return;
  getrlimit (RLIMIT_NOFILE, &nofile);
  getrlimit (RLIMIT_CORE, &core);
  out ("nofile=%llu/%llu core=%llu/%llu\n", (unsigned long long)nofile.rlim_cur, (unsigned long long)nofile.rlim_max,
       (unsigned long long)core.rlim_cur, (unsigned long long)core.rlim_max);
}

/* Without CAP_SYS_RESOURCE (dropped here so the case does not depend on
 * the host) a hard limit cannot go up. */
static void
child_rlimit_raise (oci_config *c, void *arg)
{
  cap_t caps = cap_get_proc ();
  cap_value_t v = CAP_SYS_RESOURCE;
  struct rlimit rl;
  cleanup_error ocirun_error_t err = NULL;
  int ret;

  cap_set_flag (caps, CAP_EFFECTIVE, 1, &v, CAP_CLEAR);
  if (cap_set_proc (caps) < 0)
    out ("cap_set_proc failed\n");
  cap_free (caps);
  getrlimit (RLIMIT_NOFILE, &rl);
  free (c->process->rlimits[0]);
  c->process->rlimits[0] = xmalloc0 (sizeof (oci_rlimit));
  c->process->rlimits[0]->type = xstrdup ("RLIMIT_NOFILE");
  c->process->rlimits[0]->soft = rl.rlim_cur;
  c->process->rlimits[0]->hard = rl.rlim_max + 1;
  ret = ocirun_process_exec (c, c->process, false, NULL, &err);
  out ("%s (%d)", err ? err->msg : "(no error)", -ret);
}

static void
test_rlimits (void)
{
  cleanup_free char *ok = run_child ("\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":100,\"hard\":200},"
                                     "{\"type\":\"RLIMIT_CORE\",\"soft\":0,\"hard\":0}]",
                                     NULL, child_rlimits, NULL);
  cleanup_free char *raise
      = run_child ("\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1,\"hard\":1}]", NULL, child_rlimit_raise, NULL);
  cleanup_free char *bad
      = run_child ("\"rlimits\":[{\"type\":\"RLIMIT_FOO\",\"soft\":1,\"hard\":1}]", NULL, child_error, NULL);

  CHECK_STREQ (ok, "nofile=100/200 core=0/0\n");
  CHECK_STREQ (raise, "setrlimit `RLIMIT_NOFILE`: Operation not permitted (1)");
  CHECK_STREQ (bad, "unknown rlimit type `RLIMIT_FOO` (22)");
}

static void
child_attrs (oci_config *c, void *arg)
{
  cleanup_free char *oom = NULL;
  size_t len;
  struct utsname u;
  unsigned long mask = 0;
  int mode = -1;

  if (!exec_until_lookup (c, NULL))
    return;
  out ("policy=%d nice=%d ioprio=%ld", sched_getscheduler (0), getpriority (PRIO_PROCESS, 0),
       syscall (SYS_ioprio_get, 1, 0));
  if (ocirun_read_file ("/proc/self/oom_score_adj", &oom, &len, NULL) == 0)
    out (" oom=%s", strtok (oom, "\n"));
  uname (&u);
  out (" machine=%s", u.machine);
  if (syscall (SYS_get_mempolicy, &mode, &mask, sizeof (mask) * 8, NULL, 0UL) == 0)
    out (" mpol=%d/%lx", mode, mask);
  out ("\n");
}

static void
test_attrs (void)
{
  cleanup_free char *got = run_child ("\"scheduler\":{\"policy\":\"SCHED_BATCH\",\"nice\":5},"
                                      "\"ioPriority\":{\"class\":\"IOPRIO_CLASS_BE\",\"priority\":4},"
                                      "\"oomScoreAdj\":500",
                                      "\"personality\":{\"domain\":\"LINUX32\"},"
                                      "\"memoryPolicy\":{\"mode\":\"MPOL_BIND\",\"nodes\":\"0\"}",
                                      child_attrs, NULL);
  cleanup_free char *bad_nodes
      = run_child (NULL, "\"memoryPolicy\":{\"mode\":\"MPOL_BIND\",\"nodes\":\"0-x\"}", child_error, NULL);
  cleanup_free char *bad_policy = run_child ("\"scheduler\":{\"policy\":\"SCHED_FOO\"}", NULL, child_error, NULL);
  cleanup_free char *bad_domain = run_child (NULL, "\"personality\":{\"domain\":\"SVR4\"}", child_error, NULL);
  const char *machine =
#ifdef __x86_64__
      "i686";
#else
      NULL;
#endif

  if (machine)
    {
      cleanup_free char *expected = NULL;
      xasprintf (&expected, "policy=%d nice=5 ioprio=%d oom=500 machine=%s mpol=2/1\n", SCHED_BATCH, (2 << 13) | 4,
                 machine);
      CHECK_STREQ (got, expected);
    }
  CHECK_STREQ (bad_nodes, "memoryPolicy: invalid node list `0-x` (22)");
  CHECK_STREQ (bad_policy, "scheduler: unknown policy `SCHED_FOO` (22)");
  CHECK_STREQ (bad_domain, "personality: unknown domain `SVR4` (22)");
}

static void
child_nnp (oci_config *c, void *arg)
{
  if (exec_until_lookup (c, NULL))
    status_lines ("NoNewPrivs,Seccomp");
}

static void
test_nnp (void)
{
  cleanup_free char *on = run_child ("\"noNewPrivileges\":true", NULL, child_nnp, NULL);
  cleanup_free char *off = run_child ("\"noNewPrivileges\":false", NULL, child_nnp, NULL);

  CHECK_STREQ (on, "NoNewPrivs:\t1\nSeccomp:\t0\n");
  CHECK_STREQ (off, "NoNewPrivs:\t0\nSeccomp:\t0\n");
}

static void
child_seccomp (oci_config *c, void *arg)
{
  long ret;

  if (!exec_until_lookup (c, NULL))
    return;
  status_lines ("NoNewPrivs,Seccomp");
  ret = mkdir ("/ocirun-test-nonexistent/x", 0700);
  out ("mkdir=%ld/%d ", ret, errno);
  ret = syscall (SYS_getpriority, PRIO_PGRP, 0);
  out ("pgrp=%ld/%d ", ret, errno);
  ret = syscall (SYS_getpriority, PRIO_USER, 0);
  out ("user=%ld/%d ", ret, errno);
  ret = syscall (SYS_getpriority, PRIO_PROCESS, 0);
  out ("process=%d ", ret >= 0);
  ret = dup3 (0, 100, 0x40000000);
  out ("dup3=%ld/%d\n", ret, errno);
}

static void
test_seccomp (void)
{
  /* Filter loaded early (no NNP): it must not set no_new_privs itself.
   * getpriority has two conditions on arg 0: separate rules, so both
   * values are refused; dup3's MASKED_EQ matches only the flag bit. */
  const char *sc
      = "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\","
        "\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"],\"flags\":[\"SECCOMP_FILTER_FLAG_TSYNC\","
        "\"SECCOMP_FILTER_FLAG_LOG\",\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"],\"syscalls\":["
        "{\"names\":[\"mkdir\",\"mkdirat\",\"ocirun_not_a_syscall\"],\"action\":\"SCMP_ACT_ERRNO\","
        "\"errnoRet\":38},"
        "{\"names\":[\"getpriority\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":["
        "{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},{\"index\":0,\"value\":2,\"op\":\"SCMP_CMP_EQ\"}]},"
        "{\"names\":[\"dup3\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":95,\"args\":["
        "{\"index\":2,\"value\":1073741824,\"valueTwo\":1073741824,\"op\":\"SCMP_CMP_MASKED_EQ\"}]},"
        "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ALLOW\"}]}";
  /* The library is only loaded on request, never from wherever the
   * process stands when it builds the filter. */
  cleanup_free char *unloaded = run_child (NULL, sc, child_error, NULL);
  cleanup_error ocirun_error_t perr = NULL;
  CHECK_STREQ (unloaded, "seccomp: libseccomp was not loaded before entering the container (79)");
  CHECK (ocirun_seccomp_prepare (&perr) == 0);
  cleanup_free char *got = run_child (NULL, sc, child_seccomp, NULL);
  cleanup_free char *bad_action = run_child (NULL,
                                             "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{"
                                             "\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_X\"}]}",
                                             child_error, NULL);
  cleanup_free char *bad_default
      = run_child (NULL, "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_NOTIFY\"}", child_error, NULL);
  cleanup_free char *bad_arch
      = run_child (NULL, "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_VAX\"]}",
                   child_error, NULL);
  cleanup_free char *bad_flag
      = run_child (NULL, "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"SECCOMP_FILTER_FLAG_FOO\"]}",
                   child_error, NULL);

  CHECK_STREQ (got, "NoNewPrivs:\t0\nSeccomp:\t2\nmkdir=-1/38 pgrp=-1/1 user=-1/1 process=1 dup3=-1/95\n");
  CHECK_STREQ (bad_action, "seccomp: unknown action `SCMP_ACT_X` (22)");
  CHECK_STREQ (bad_default, "seccomp: SCMP_ACT_NOTIFY cannot be used as the default action (22)");
  CHECK_STREQ (bad_arch, "seccomp: unknown architecture `SCMP_ARCH_VAX` (22)");
  CHECK_STREQ (bad_flag, "seccomp: unknown flag `SECCOMP_FILTER_FLAG_FOO` (22)");
}

static int
keep_listener (void *data, int fd, ocirun_error_t *err)
{
  *(int *)data = fd;
  return 0;
}

/* The listener reaches the hook and really answers: a grandchild's
 * getppid() is intercepted and gets 4242. */
static void
child_notify (oci_config *c, void *arg)
{
  int listener = -1;
  struct ocirun_exec_hooks hooks = { .data = &listener, .seccomp_listener = keep_listener };
  struct seccomp_notif *req = NULL;
  struct seccomp_notif_resp *resp = NULL;
  int status;
  pid_t pid;

  if (!exec_until_lookup (c, &hooks))
    return;
  out ("listener=%s ", listener >= 0 && (fcntl (listener, F_GETFD) & FD_CLOEXEC) ? "cloexec" : "bad");
  if (listener < 0)
    return;
  pid = fork ();
  if (pid == 0)
    _exit (syscall (SYS_getppid) == 4242 ? 0 : 1);
  if (seccomp_notify_alloc (&req, &resp) < 0 || seccomp_notify_receive (listener, req) < 0)
    {
      out ("receive failed\n");
      kill (pid, SIGKILL);
      return;
    }
  out ("syscall=%s ", req->data.nr == SYS_getppid ? "getppid" : "other");
  resp->id = req->id;
  resp->val = 4242;
  resp->error = 0;
  resp->flags = 0;
  if (seccomp_notify_respond (listener, resp) < 0)
    out ("respond failed ");
  waitpid (pid, &status, 0);
  out ("child=%d\n", WIFEXITED (status) ? WEXITSTATUS (status) : -1);
  seccomp_notify_free (req, resp);
}

static void
test_notify (void)
{
  cleanup_free char *got
      = run_child (NULL,
                   "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/run/ocirun-test.sock\","
                   "\"syscalls\":[{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
                   child_notify, NULL);
  cleanup_free char *write_notify
      = run_child (NULL,
                   "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/x\","
                   "\"syscalls\":[{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
                   child_error, NULL);

  CHECK_STREQ (got, "listener=cloexec syscall=getppid child=0\n");
  CHECK_STREQ (write_notify, "seccomp: SCMP_ACT_NOTIFY cannot be used for the write syscall (22)");
}

static void
child_hostname (oci_config *c, void *arg)
{
  cleanup_error ocirun_error_t err = NULL;
  cleanup_free char *shmmax = NULL;
  struct utsname u;
  size_t len;

  if (unshare (CLONE_NEWUTS | CLONE_NEWIPC) < 0)
    {
      out ("unshare: %m\n");
      return;
    }
  if (ocirun_set_hostname_sysctl (c, &err) < 0)
    {
      out ("%s (%d)", err->msg, err->status);
      return;
    }
  uname (&u);
  ocirun_read_file ("/proc/sys/kernel/shmmax", &shmmax, &len, NULL);
  out ("%s %s %s", u.nodename, u.domainname, shmmax ? shmmax : "?\n");
}

static void
test_hostname_sysctl (void)
{
  cleanup_free char *got = NULL;
  cleanup_free char *bad = NULL;
  cleanup_free char *dotdot = NULL;
  cleanup_free char *missing = NULL;
  cleanup_free char *expected = NULL;
  struct utsname u;

  uname (&u);
  xasprintf (&expected, "%s %s 123456\n", u.nodename, u.domainname);
  got = run_child (NULL, "\"sysctl\":{\"kernel.shmmax\":\"123456\"}", child_hostname, NULL);
  /* No hostname in the config: left alone. */
  CHECK_STREQ (got, expected);

  bad = run_child (NULL, "\"sysctl\":{\"/kernel.shmmax\":\"1\"}", child_hostname, NULL);
  CHECK_STREQ (bad, "invalid sysctl key `/kernel.shmmax` (22)");
  dotdot = run_child (NULL, "\"sysctl\":{\"kernel/../../self/x\":\"1\"}", child_hostname, NULL);
  CHECK_STREQ (dotdot, "invalid sysctl key `kernel/../../self/x` (22)");
  missing = run_child (NULL, "\"sysctl\":{\"kernel.ocirun_nope\":\"1\"}", child_hostname, NULL);
  CHECK_STREQ (missing,
               "sysctl `kernel.ocirun_nope`: open `/proc/sys/kernel/ocirun_nope`: No such file or directory (2)");
}

static void
child_hostname_set (oci_config *c, void *arg)
{
  c->hostname = xstrdup ("ocirun-test");
  c->domainname = xstrdup ("example.org");
  child_hostname (c, arg);
}

static void
test_hostname (void)
{
  cleanup_free char *got = run_child (NULL, "\"sysctl\":{\"kernel.shmmax\":\"654321\"}", child_hostname_set, NULL);

  CHECK_STREQ (got, "ocirun-test example.org 654321\n");
}

static void
test_exec_errors (void)
{
  cleanup_free char *not_found = run_child (NULL, NULL, child_error, NULL);
  cleanup_free char *no_path = run_child ("\"env\":[\"FOO=1\"],\"args\":[\"busybox\"]", NULL, child_error, NULL);
  cleanup_free char *not_exec = run_child ("\"args\":[\"/etc/passwd\"]", NULL, child_error, NULL);
  cleanup_free char *missing_cwd = run_child ("\"cwd\":\"/ocirun-test-no-such-dir\"", NULL, child_error, NULL);
  cleanup_free char *empty_args = run_child ("\"args\":[]", NULL, child_error, NULL);

  CHECK_STREQ (not_found, NOT_FOUND " (2)");
  /* The runtime's own PATH never counts. */
  CHECK_STREQ (no_path, "exec: \"busybox\": executable file not found in $PATH (2)");
  CHECK_STREQ (not_exec, "exec: \"/etc/passwd\": Permission denied (13)");
  /* exec does not create a missing cwd (runc neither). */
  CHECK_STREQ (missing_cwd, "chdir to cwd (`/ocirun-test-no-such-dir`) set in config.json failed: No such file or "
                            "directory (2)");
  CHECK_STREQ (empty_args, "process.args must not be empty (22)");
}

static int
hook_wait_start (void *data, ocirun_error_t *err)
{
  out ("wait_start\n");
  return 0;
}

static int
hook_start_container (void *data, ocirun_error_t *err)
{
  out ("start_container\n");
  return 0;
}

static void
child_full (oci_config *c, void *arg)
{
  cleanup_error ocirun_error_t err = NULL;
  struct ocirun_exec_hooks hooks = { .wait_start = hook_wait_start, .start_container = hook_start_container };
  const char *cwd = arg;

  free (c->process->cwd);
  c->process->cwd = xstrdup (cwd);
  ocirun_process_exec (c, c->process, true, &hooks, &err);
  out ("exec failed: %s\n", err ? err->msg : "?");
}

static void
test_full_exec (void)
{
  char tmpl[] = "/tmp/ocirun-test-process-XXXXXX";
  cleanup_free char *cwd = NULL;
  cleanup_free char *got = NULL;
  cleanup_free char *expected = NULL;
  cleanup_free char *cmd = NULL;
  struct stat st;

  if (mkdtemp (tmpl) == NULL)
    {
      CHECK (!"mkdtemp");
      return;
    }
  xasprintf (&cwd, "%s/a/b", tmpl);
  got = run_child ("\"user\":{\"uid\":4242,\"gid\":4243,\"additionalGids\":[10],\"umask\":18},"
                   "\"noNewPrivileges\":true,\"env\":[\"PATH=/usr/local/bin:/usr/bin:/bin\",\"FOO=bar\"],"
                   "\"execCPUAffinity\":{\"initial\":\"0\"},"
                   "\"args\":[\"busybox\",\"sh\",\"-c\",\"echo $(id -u) $(id -G) $(umask) $(pwd) $HOME $FOO;"
                   " grep -E '^(CapEff|NoNewPrivs|Seccomp|Cpus_allowed_list):' /proc/self/status\"]",
                   "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"swapon\"],"
                   "\"action\":\"SCMP_ACT_ERRNO\"}]}",
                   child_full, cwd);
  xasprintf (&expected,
             "wait_start\nstart_container\n4242 4243 10 0022 %s / bar\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n"
             "Seccomp:\t2\nCpus_allowed_list:\t0\n",
             cwd);
  CHECK_STREQ (got, expected);
  /* The init created the missing cwd. */
  CHECK (stat (cwd, &st) == 0 && S_ISDIR (st.st_mode));
  xasprintf (&cmd, "rm -rf '%s'", tmpl);
  CHECK (system (cmd) == 0);
}

static void
test_cpu_list (void)
{
  cpu_set_t set;
  cleanup_error ocirun_error_t err = NULL;

  CHECK (ocirun_parse_cpu_list ("0-3,5", &set, &err) == 0);
  CHECK (CPU_COUNT (&set) == 5 && CPU_ISSET (3, &set) && !CPU_ISSET (4, &set) && CPU_ISSET (5, &set));
  CHECK (ocirun_parse_cpu_list (" 7 , 9-10 ", &set, &err) == 0);
  CHECK (CPU_COUNT (&set) == 3 && CPU_ISSET (7, &set) && CPU_ISSET (10, &set));
  CHECK (ocirun_parse_cpu_list ("3-1", &set, &err) == -EINVAL);
  CHECK_STREQ (err->msg, "invalid cpu list `3-1`");
  CHECK (ocirun_parse_cpu_list ("1,,2", &set, &err) == -EINVAL);
  CHECK (ocirun_parse_cpu_list ("a", &set, &err) == -EINVAL);
  CHECK (ocirun_parse_cpu_list ("1-", &set, &err) == -EINVAL);
  CHECK (ocirun_parse_cpu_list ("100000", &set, &err) == -EINVAL);
  CHECK_STREQ (err->msg, "invalid cpu list `100000`: 100000 is too large");
}

int
main (void)
{
  if (geteuid () != 0)
    {
      printf ("SKIP: needs root\n");
      return 77;
    }
  test_cpu_list ();
  test_caps ();
  test_user ();
  test_rlimits ();
  test_attrs ();
  test_nnp ();
  test_seccomp ();
  test_notify ();
  test_hostname_sysctl ();
  test_hostname ();
  test_exec_errors ();
  test_full_exec ();
  UNIT_DONE ();
}
