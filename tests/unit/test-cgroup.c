/* The cgroupfs driver against the host's real hierarchies (needs root; skips
 * otherwise). On a hybrid host the v1 code runs on the v1 hierarchies and the
 * v2 code on the (controller-less) cgroup2 tree at /sys/fs/cgroup/unified;
 * on a pure v2 host the v2 code runs on /sys/fs/cgroup. Everything created
 * lives below /ocirun-test-<pid> and is removed even when checks fail. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "cgroup/cgroup-internal.h"
#include "cgroup/devices-ebpf.h"
#include "cgroup/devices-rules.h"
#include "util.h"
#include "unit.h"

static char top[64];      /* "/ocirun-test-<pid>" */
static char rel_name[64]; /* relative cgroupsPath */
static char id_name[64];  /* container id for the empty-path case */
static struct ocirun_cgroup_layout host;
static pid_t children[16];
static size_t nchildren;

/* ------------------------------------------------------------- helpers */

static pid_t
spawn_sleeper (void)
{
  pid_t pid = fork ();
  if (pid == 0)
    {
      signal (SIGTERM, SIG_DFL);
      signal (SIGINT, SIG_DFL);
      for (;;)
        pause ();
    }
  if (pid > 0 && nchildren < 16)
    children[nchildren++] = pid;
  return pid;
}

static int
reap (pid_t pid)
{
  int status = 0;
  for (size_t i = 0; i < nchildren; i++)
    if (children[i] == pid)
      children[i] = 0;
  if (waitpid (pid, &status, 0) < 0)
    return -1;
  return status;
}

static char *
slurp (const char *path)
{
  char *buf = NULL;
  if (ocirun_read_file (path, &buf, NULL, NULL) < 0)
    return NULL;
  return buf;
}

static char *
knob (const char *dir, const char *file)
{
  cleanup_free char *p = NULL;
  char *v;
  xasprintf (&p, "%s/%s", dir, file);
  v = slurp (p);
  if (v)
    v[strcspn (v, "\n")] = '\0';
  return v;
}

#define CHECK_KNOB(dir, file, expected)                                                                                \
  do                                                                                                                   \
    {                                                                                                                  \
      cleanup_free char *_v = knob ((dir), (file));                                                                    \
      CHECK_STREQ (_v, (expected));                                                                                    \
    }                                                                                                                  \
  while (0)

static bool
exists (const char *p)
{
  struct stat st;
  return stat (p, &st) == 0;
}

static bool
contains (const char *hay, const char *needle)
{
  return hay && strstr (hay, needle);
}

static oci_resources *
parse_resources (const char *json)
{
  ocispec_errors errs = { 0 };
  oci_resources *r = oci_resources_parse_data (json, strlen (json), &errs);
  if (r == NULL)
    for (size_t i = 0; i < errs.len; i++)
      fprintf (stderr, "resources: %s\n", errs.msgs[i]);
  ocispec_errors_free (&errs);
  return r;
}

static struct ocirun_cgroup_dir *
dir_of (struct ocirun_cgroup *cg, const char *controller)
{
  return ocirun_cgroup_find (cg, controller);
}

static const char *
own_path (const struct ocirun_cgroup_hierarchy *h)
{
  static char buf[4096];
  cleanup_free char *self = slurp ("/proc/self/cgroup");
  char *save = NULL;
  buf[0] = '\0';
  if (self == NULL)
    return buf;
  for (char *line = strtok_r (self, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *c1 = strchr (line, ':'), *c2 = c1 ? strchr (c1 + 1, ':') : NULL;
      if (c2 == NULL)
        continue;
      *c2 = '\0';
      if ((h->unified && c1[1] == '\0') || (!h->unified && strcmp (c1 + 1, h->controllers) == 0))
        {
          snprintf (buf, sizeof buf, "%s", c2 + 1);
          break;
        }
    }
  return buf;
}

/* Removes whatever a test may have left, in every hierarchy. */
static void
cleanup (void)
{
  for (size_t i = 0; i < nchildren; i++)
    if (children[i] > 0)
      {
        kill (children[i], SIGKILL);
        waitpid (children[i], NULL, 0);
        children[i] = 0;
      }
  for (size_t i = 0; i < host.len; i++)
    {
      static const char *const subs[] = { "/ctr/sub", "/ctr", "/v2/ctr", "/v2", "/bad", "/rootless", "", NULL };
      const char *own = own_path (&host.h[i]);
      char p[4096];
      for (size_t j = 0; subs[j]; j++)
        {
          snprintf (p, sizeof p, "%s%s%s", host.h[i].mountpoint, top, subs[j]);
          rmdir (p);
        }
      snprintf (p, sizeof p, "%s%s/%s", host.h[i].mountpoint, strcmp (own, "/") ? own : "", rel_name);
      rmdir (p);
      snprintf (p, sizeof p, "%s%s/%s", host.h[i].mountpoint, strcmp (own, "/") ? own : "", id_name);
      rmdir (p);
    }
}

static void
on_signal (int sig)
{
  cleanup ();
  signal (sig, SIG_DFL);
  raise (sig);
}

/* ------------------------------------------------------------ pure logic */

static void
test_clean_path (void)
{
  bool abs = false;
  cleanup_free char *a = ocirun_cgroup_clean_path ("/a//b/./c/", &abs);
  CHECK_STREQ (a, "/a/b/c");
  CHECK (abs);
  cleanup_free char *b = ocirun_cgroup_clean_path ("x/../../y", &abs);
  CHECK_STREQ (b, "/y");
  CHECK (!abs);
  cleanup_free char *c = ocirun_cgroup_clean_path ("/../..", &abs);
  CHECK_STREQ (c, "/");
  CHECK (ocirun_cgroup_clean_path ("", &abs) == NULL);
}

static void
test_mountinfo (void)
{
  static const char mi[] = "25 1 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
                           "26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
                           "27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
                           "28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
                           "29 25 0:26 /sub /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n"
                           "30 25 0:27 / /other rw - cgroup cgroup rw,name=foreign\n"
                           "31 25 0:25 / /again/cpu rw - cgroup cgroup rw,cpu,cpuacct\n"
                           "32 1 0:28 / /mnt/c2 rw - cgroup2 cgroup2 rw\n";
  struct ocirun_cgroup_layout l = { 0 };
  int ret = ocirun_cgroup_layout_parse_mountinfo (mi, OCIRUN_CGROUP_HYBRID, &l, NULL);

  CHECK (ret == 0);
  CHECK (l.len == 4);
  if (l.len == 4)
    {
      CHECK (l.h[0].unified);
      CHECK_STREQ (l.h[0].mountpoint, "/sys/fs/cgroup/unified");
      CHECK_STREQ (l.h[1].controllers, "name=systemd");
      CHECK_STREQ (l.h[2].controllers, "cpu,cpuacct");
      CHECK_STREQ (l.h[3].mountpoint, "/sys/fs/cgroup/mem ory");
      CHECK_STREQ (l.h[3].mount_root, "/sub");
    }
  ocirun_cgroup_layout_clear (&l);

  ret = ocirun_cgroup_layout_parse_mountinfo (mi, OCIRUN_CGROUP_V1, &l, NULL);
  CHECK (ret == 0 && l.len == 3 && !l.h[0].unified);
  ocirun_cgroup_layout_clear (&l);

  ret = ocirun_cgroup_layout_parse_mountinfo (mi, OCIRUN_CGROUP_V2, &l, NULL);
  CHECK (ret < 0); /* no cgroup2 on /sys/fs/cgroup */
  ocirun_cgroup_layout_clear (&l);
}

/* ----------------------------------------------------------- v1 (hybrid) */

static void
check_proc_cgroup (pid_t pid, struct ocirun_cgroup *cg)
{
  char p[64];
  cleanup_free char *text = NULL;
  snprintf (p, sizeof p, "/proc/%d/cgroup", (int)pid);
  text = slurp (p);
  for (size_t i = 0; i < cg->len; i++)
    {
      char want[4096];
      snprintf (want, sizeof want, "%s:%s\n", cg->dirs[i].h.controllers, cg->dirs[i].path);
      if (!contains (text, want))
        fprintf (stderr, "missing `%s` in %s:\n%s", want, p, text ? text : "(null)");
      CHECK (contains (text, want));
    }
}

static void
test_v1 (void)
{
  cleanup_free char *path = NULL;
  cleanup_free char *json = NULL;
  cleanup_error ocirun_error_t err = NULL;
  struct ocirun_cgroup *cg = NULL, *loaded = NULL;
  struct ocirun_cgroup_request req = { 0 };
  oci_resources *r;
  struct ocirun_cgroup_dir *d;
  bool have_weight, frozen = true;
  pid_t child;
  int ret, status;

  xasprintf (&path, "%s/ctr", top);
  have_weight = exists ("/sys/fs/cgroup/blkio/blkio.weight") || exists ("/sys/fs/cgroup/blkio/blkio.bfq.weight");
  xasprintf (&json,
             "{\"memory\":{\"limit\":67108864,\"reservation\":33554432%s},"
             "\"cpu\":{\"shares\":512,\"quota\":50000,\"period\":100000,\"cpus\":\"0\"},"
             "\"pids\":{\"limit\":42}%s,"
             "\"devices\":[{\"allow\":false,\"access\":\"rwm\"},"
             "{\"allow\":true,\"type\":\"c\",\"major\":4,\"minor\":64,\"access\":\"rw\"}]}",
             exists ("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") ? ",\"swap\":134217728" : "",
             have_weight ? ",\"blockIO\":{\"weight\":300}" : "");
  r = parse_resources (json);
  CHECK (r != NULL);
  if (r == NULL)
    return;

  req.id = "ignored";
  req.cgroups_path = path;
  req.resources = r;
  ret = ocirun_cgroup_create (&req, &cg, &err);
  if (ret < 0)
    fprintf (stderr, "create: %s\n", err->msg);
  CHECK (ret == 0 && cg != NULL);
  if (cg == NULL)
    goto out;

  CHECK_STREQ (ocirun_cgroup_path (cg), path);
  CHECK_STREQ (ocirun_cgroup_manager (cg), "cgroupfs");
  CHECK (ocirun_cgroup_clone_fd (cg) == -1); /* v1: the pid must be written everywhere */
  CHECK (cg->len == host.len);
  for (size_t i = 0; i < cg->len; i++)
    CHECK (exists (cg->dirs[i].abs));
  if (host.mode == OCIRUN_CGROUP_HYBRID)
    CHECK (ocirun_cgroup_unified (cg) != NULL);

  if ((d = dir_of (cg, "memory")))
    {
      CHECK_KNOB (d->abs, "memory.limit_in_bytes", "67108864");
      CHECK_KNOB (d->abs, "memory.soft_limit_in_bytes", "33554432");
      if (exists ("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"))
        CHECK_KNOB (d->abs, "memory.memsw.limit_in_bytes", "134217728");
    }
  if ((d = dir_of (cg, "cpu")))
    {
      CHECK_KNOB (d->abs, "cpu.shares", "512");
      CHECK_KNOB (d->abs, "cpu.cfs_quota_us", "50000");
      CHECK_KNOB (d->abs, "cpu.cfs_period_us", "100000");
    }
  if ((d = dir_of (cg, "cpuset")))
    {
      cleanup_free char *rootmems = knob ("/sys/fs/cgroup/cpuset", "cpuset.mems");
      CHECK_KNOB (d->abs, "cpuset.cpus", "0");
      CHECK_KNOB (d->abs, "cpuset.mems", rootmems); /* inherited, or the kernel refuses tasks */
    }
  if ((d = dir_of (cg, "pids")))
    CHECK_KNOB (d->abs, "pids.max", "42");
  if (have_weight && (d = dir_of (cg, "blkio")))
    {
      cleanup_free char *w = knob (d->abs, "blkio.weight");
      if (w == NULL)
        w = knob (d->abs, "blkio.bfq.weight");
      CHECK (w && strstr (w, "300"));
    }
  if ((d = dir_of (cg, "devices")))
    {
      cleanup_free char *list = NULL;
      cleanup_free char *p = NULL;
      xasprintf (&p, "%s/devices.list", d->abs);
      list = slurp (p);
      CHECK (contains (list, "c 4:64 rw\n"));
      CHECK (contains (list, "c 1:3 rwm\n"));   /* runc's default /dev/null */
      CHECK (contains (list, "c 136:* rwm\n")); /* and /dev/pts */
      CHECK (!contains (list, "a *:* rwm"));
    }

  /* enter, pids, freeze, load, update, kill */
  child = spawn_sleeper ();
  CHECK (child > 0);
  ret = ocirun_cgroup_enter (cg, child, &err);
  if (ret < 0)
    fprintf (stderr, "enter: %s\n", err->msg);
  CHECK (ret == 0);
  check_proc_cgroup (child, cg);
  {
    cleanup_free pid_t *pids = NULL;
    size_t n = 0;
    CHECK (ocirun_cgroup_pids (cg, &pids, &n, &err) == 0);
    CHECK (n == 1 && pids && pids[0] == child);
  }

  CHECK (ocirun_cgroup_is_frozen (cg, &frozen, &err) == 0 && !frozen);
  ret = ocirun_cgroup_freeze (cg, true, &err);
  CHECK (ret == 0);
  CHECK (ocirun_cgroup_is_frozen (cg, &frozen, &err) == 0 && frozen);
  if ((d = dir_of (cg, "freezer")))
    CHECK_KNOB (d->abs, "freezer.state", "FROZEN");
  /* A paused container stays paused when signalled (the thaw is ours to
   * undo only if we froze). */
  CHECK (ocirun_cgroup_kill (cg, 0, &err) == 0);
  CHECK (ocirun_cgroup_is_frozen (cg, &frozen, &err) == 0 && frozen);
  CHECK (ocirun_cgroup_freeze (cg, false, &err) == 0);
  CHECK (ocirun_cgroup_is_frozen (cg, &frozen, &err) == 0 && !frozen);

  ret = ocirun_cgroup_load (ocirun_cgroup_path (cg), "cgroupfs", NULL, &loaded, &err);
  CHECK (ret == 0 && loaded);
  if (loaded)
    {
      cleanup_free pid_t *pids = NULL;
      size_t n = 0;
      oci_resources *u = parse_resources ("{\"memory\":{\"limit\":100663296},\"pids\":{\"limit\":-1},"
                                          "\"cpu\":{\"quota\":-1}}");
      CHECK (ocirun_cgroup_pids (loaded, &pids, &n, &err) == 0 && n == 1);
      ret = ocirun_cgroup_update (loaded, u, NULL, 0, &err);
      if (ret < 0)
        fprintf (stderr, "update: %s\n", err->msg);
      CHECK (ret == 0);
      if ((d = dir_of (loaded, "memory")))
        CHECK_KNOB (d->abs, "memory.limit_in_bytes", "100663296");
      if ((d = dir_of (loaded, "pids")))
        CHECK_KNOB (d->abs, "pids.max", "max");
      if ((d = dir_of (loaded, "cpu")))
        CHECK_KNOB (d->abs, "cpu.cfs_quota_us", "-1");
      if ((d = dir_of (loaded, "devices")))
        {
          /* update without devices leaves the rules alone */
          cleanup_free char *p = NULL;
          cleanup_free char *list = NULL;
          xasprintf (&p, "%s/devices.list", d->abs);
          list = slurp (p);
          CHECK (contains (list, "c 4:64 rw\n"));
        }
      oci_resources_free (u);
    }

  ret = ocirun_cgroup_kill (cg, SIGKILL, &err);
  CHECK (ret == 0);
  status = reap (child);
  CHECK (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
  CHECK (ocirun_cgroup_is_frozen (cg, &frozen, &err) == 0 && !frozen);

  /* a cgroup the container made for itself goes too */
  if ((d = dir_of (cg, "pids")))
    {
      cleanup_free char *sub = NULL;
      xasprintf (&sub, "%s/sub", d->abs);
      CHECK (mkdir (sub, 0755) == 0);
    }
  ret = ocirun_cgroup_destroy (cg, &err);
  if (ret < 0)
    fprintf (stderr, "destroy: %s\n", err->msg);
  CHECK (ret == 0);
  for (size_t i = 0; i < cg->len; i++)
    CHECK (!exists (cg->dirs[i].abs));
  /* destroying twice (delete after a failed delete) is fine */
  CHECK (ocirun_cgroup_destroy (loaded, &err) == 0);

out:
  ocirun_cgroup_free (loaded);
  ocirun_cgroup_free (cg);
  oci_resources_free (r);
}

/* A relative cgroupsPath lands below the caller's own cgroup in each
 * hierarchy, which may differ between hierarchies. */
static void
test_v1_relative (void)
{
  cleanup_error ocirun_error_t err = NULL;
  struct ocirun_cgroup *cg = NULL, *loaded = NULL;
  struct ocirun_cgroup_request req = { 0 };
  int ret;

  req.id = "x";
  req.cgroups_path = rel_name;
  ret = ocirun_cgroup_create (&req, &cg, &err);
  if (ret < 0)
    fprintf (stderr, "create relative: %s\n", err->msg);
  CHECK (ret == 0 && cg);
  if (cg == NULL)
    return;
  for (size_t i = 0; i < cg->len; i++)
    {
      char want[4096];
      const char *own = own_path (&cg->dirs[i].h);
      snprintf (want, sizeof want, "%s/%s", strcmp (own, "/") ? own : "", rel_name);
      CHECK_STREQ (cg->dirs[i].path, want);
      CHECK (exists (cg->dirs[i].abs));
    }
  ret = ocirun_cgroup_load (ocirun_cgroup_path (cg), NULL, NULL, &loaded, &err);
  CHECK (ret == 0 && loaded && loaded->len == cg->len);
  for (size_t i = 0; loaded && i < loaded->len && i < cg->len; i++)
    CHECK_STREQ (loaded->dirs[i].abs, cg->dirs[i].abs);
  CHECK (ocirun_cgroup_destroy (loaded ? loaded : cg, &err) == 0);
  for (size_t i = 0; i < cg->len; i++)
    CHECK (!exists (cg->dirs[i].abs));
  ocirun_cgroup_free (loaded);
  ocirun_cgroup_free (cg);

  /* no cgroupsPath: the container id, relative (runc) */
  memset (&req, 0, sizeof req);
  req.id = id_name;
  cg = NULL;
  ret = ocirun_cgroup_create (&req, &cg, &err);
  CHECK (ret == 0 && cg);
  if (cg)
    {
      const char *own = own_path (&cg->dirs[0].h);
      char want[4096];
      snprintf (want, sizeof want, "%s/%s", strcmp (own, "/") ? own : "", id_name);
      CHECK_STREQ (cg->dirs[0].path, want);
      CHECK (ocirun_cgroup_destroy (cg, &err) == 0);
      ocirun_cgroup_free (cg);
    }
}

static void
expect_create_error (const char *json, const char *needle, bool systemd)
{
  cleanup_error ocirun_error_t err = NULL;
  cleanup_free char *path = NULL;
  struct ocirun_cgroup *cg = NULL;
  struct ocirun_cgroup_request req = { 0 };
  oci_resources *r = json ? parse_resources (json) : NULL;
  int ret;

  xasprintf (&path, "%s/bad", top);
  req.id = "x";
  req.cgroups_path = path;
  req.resources = r;
  req.systemd = systemd;
  ret = ocirun_cgroup_create (&req, &cg, &err);
  CHECK (ret < 0 && cg == NULL);
  if (err && !strstr (err->msg, needle))
    fprintf (stderr, "error `%s` lacks `%s`\n", err->msg, needle);
  CHECK (err && strstr (err->msg, needle));
  /* a failed create leaves nothing behind */
  for (size_t i = 0; i < host.len; i++)
    {
      char p[4096];
      snprintf (p, sizeof p, "%s%s", host.h[i].mountpoint, path);
      CHECK (!exists (p));
    }
  oci_resources_free (r);
}

static void
test_v1_errors (void)
{
  expect_create_error ("{\"unified\":{\"memory.max\":\"1\"}}", "linux.resources.unified: cannot be used on cgroup v1",
                       false);
  /* The systemd driver wants runc's slice:prefix:name form. */
  expect_create_error (NULL, "systemd cgroup driver: expected linux.cgroupsPath to be of format \"slice:prefix:name\"",
                       true);
  if (!exists ("/sys/fs/cgroup/net_cls"))
    expect_create_error ("{\"network\":{\"classID\":1048577}}",
                         "linux.resources.network.classID: the net_cls controller is not mounted", false);
  if (!exists ("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"))
    expect_create_error ("{\"memory\":{\"limit\":67108864,\"swap\":134217728}}", "swap accounting", false);
  expect_create_error ("{\"memory\":{\"swappiness\":101}}", "linux.resources.memory.swappiness", false);
  expect_create_error ("{\"devices\":[{\"allow\":true,\"type\":\"c\",\"access\":\"\"}]}",
                       "linux.resources.devices[0].access", false);
  expect_create_error ("{\"hugepageLimits\":[{\"pageSize\":\"3MB\",\"limit\":1}]}", "linux.resources.hugepageLimits",
                       false);
}

/* -------------------------------------------------- v2 on a cgroup2 tree */

static pid_t
clone_into (int cgfd)
{
  struct clone_args args;
  long pid;

  memset (&args, 0, sizeof args);
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = (uint64_t)cgfd;
  pid = syscall (SYS_clone3, &args, sizeof args);
  if (pid == 0)
    {
      signal (SIGTERM, SIG_DFL);
      signal (SIGINT, SIG_DFL);
      for (;;)
        pause ();
    }
  if (pid > 0 && nchildren < 16)
    children[nchildren++] = (pid_t)pid;
  return (pid_t)pid;
}

/* Opens dev read-write from a child cloned into the cgroup: 0 or errno. */
static int
probe_open (int cgfd, const char *dev)
{
  struct clone_args args;
  int status = 0;
  long pid;

  memset (&args, 0, sizeof args);
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = (uint64_t)cgfd;
  pid = syscall (SYS_clone3, &args, sizeof args);
  if (pid == 0)
    {
      int fd = open (dev, O_RDWR | O_CLOEXEC);
      _exit (fd < 0 ? errno : 0);
    }
  if (pid < 0 || waitpid ((pid_t)pid, &status, 0) < 0 || !WIFEXITED (status))
    return -1;
  return WEXITSTATUS (status);
}

/* The eBPF device program: the kernel consults it on this cgroup2 tree. */
static void
test_v2_devices (const struct ocirun_cgroup_layout *v2, struct ocirun_cgroup_request *req)
{
  /* The request is the caller's: it gets back exactly what it lent (the
   * path and devices below die with this function). */
  struct ocirun_cgroup_request saved = *req;
  cleanup_error ocirun_error_t err = NULL;
  cleanup_free char *path = NULL;
  struct ocirun_cgroup *cg = NULL;
  oci_device null_dev = { 0 };
  oci_device *ldevs[] = { &null_dev, NULL };
  oci_resources *r;
  int fd, ret;

  xasprintf (&path, "%s/devices", top);
  /* A linux.devices entry at /dev/null drops runc's default rule for it,
   * so only the deny-all rule speaks for it. */
  null_dev.path = (char *)"/dev/null";
  r = parse_resources ("{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]}");
  req->cgroups_path = path;
  req->resources = r;
  req->linux_devices = ldevs;
  req->linux_devices_len = 1;
  ret = ocirun_cgroup_create_in (v2, NULL, req, &cg, &err);
  req->linux_devices = NULL;
  req->linux_devices_len = 0;
  oci_resources_free (r);
  if (ret < 0)
    fprintf (stderr, "v2 devices create: %s\n", err->msg);
  CHECK (ret == 0 && cg);
  if (cg == NULL)
    {
      *req = saved;
      return;
    }
  fd = ocirun_cgroup_clone_fd (cg);
  CHECK (ocirun_devices_ebpf_count (fd, NULL) == 1);
  CHECK (probe_open (fd, "/dev/null") == EPERM);
  CHECK (probe_open (fd, "/dev/zero") == 0); /* a default rule */
  CHECK (probe_open (fd, "/dev/full") == 0);

  /* update: allow everything, then deny /dev/full for writing only; the
   * old program is replaced, not stacked. */
  r = parse_resources ("{\"devices\":[{\"allow\":true,\"access\":\"rwm\"},"
                       "{\"allow\":false,\"type\":\"c\",\"major\":1,\"minor\":7,\"access\":\"w\"}]}");
  ret = ocirun_cgroup_update (cg, r, NULL, 0, &err);
  oci_resources_free (r);
  if (ret < 0)
    fprintf (stderr, "v2 devices update: %s\n", err->msg);
  CHECK (ret == 0);
  CHECK (ocirun_devices_ebpf_count (fd, NULL) == 1);
  CHECK (probe_open (fd, "/dev/null") == 0);
  /* the default rules come last and allow /dev/full rwm again */
  CHECK (probe_open (fd, "/dev/full") == 0);

  r = parse_resources ("{\"devices\":[{\"allow\":true,\"access\":\"rwm\"},"
                       "{\"allow\":false,\"type\":\"c\",\"major\":1,\"minor\":9,\"access\":\"rwm\"}]}");
  ret = ocirun_cgroup_update (cg, r, NULL, 0, &err);
  oci_resources_free (r);
  CHECK (ret == 0);
  /* /dev/urandom (1:9) has a default allow rule too: still open */
  CHECK (probe_open (fd, "/dev/urandom") == 0);
  CHECK (ocirun_devices_ebpf_count (fd, NULL) == 1);

  CHECK (ocirun_cgroup_destroy (cg, &err) == 0);
  ocirun_cgroup_free (cg);
  *req = saved;
}

/* The generated program, rule by rule, run by the kernel on a bare cgroup. */
static void
test_ebpf_rules (const struct ocirun_cgroup_layout *v2)
{
  char dir[4096];
  cleanup_close int fd = -1;
  cleanup_error ocirun_error_t err = NULL;
  struct ocirun_device_rule deny_null[] = {
    { true, 'a', -1, -1, "rwm" },
    { false, 'c', 1, 3, "rwm" },
  };
  struct ocirun_device_rule read_only_zero[] = {
    { true, 'c', 1, -1, "r" }, /* every 1:* for reading */
  };
  struct ocirun_device_rule deny_then_allow[] = {
    { false, 'c', 1, 3, "rwm" },
    { true, 'c', 1, 3, "rwm" },
  };
  struct ocirun_device_rule allow_then_deny_block[] = {
    { true, 'a', -1, -1, "rwm" },
    { false, 'b', -1, -1, "rwm" },
  };

  snprintf (dir, sizeof dir, "%s%s/bpf", v2->h[0].mountpoint, top);
  {
    char parent[4096];
    snprintf (parent, sizeof parent, "%s%s", v2->h[0].mountpoint, top);
    mkdir (parent, 0755);
  }
  CHECK (mkdir (dir, 0755) == 0);
  fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK (fd >= 0);
  if (fd < 0)
    return;

  CHECK (ocirun_devices_ebpf_apply (fd, dir, deny_null, 2, &err) == 0);
  CHECK (probe_open (fd, "/dev/null") == EPERM);
  CHECK (probe_open (fd, "/dev/zero") == 0);

  CHECK (ocirun_devices_ebpf_apply (fd, dir, read_only_zero, 1, &err) == 0);
  CHECK (ocirun_devices_ebpf_count (fd, NULL) == 1);
  CHECK (probe_open (fd, "/dev/zero") == EPERM); /* O_RDWR asks for w too */
  {
    /* read-only is allowed */
    struct clone_args args;
    int status = 0;
    long pid;
    memset (&args, 0, sizeof args);
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)fd;
    pid = syscall (SYS_clone3, &args, sizeof args);
    if (pid == 0)
      _exit (open ("/dev/zero", O_RDONLY | O_CLOEXEC) < 0 ? errno : 0);
    CHECK (pid > 0 && waitpid ((pid_t)pid, &status, 0) > 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0);
  }

  CHECK (ocirun_devices_ebpf_apply (fd, dir, deny_then_allow, 2, &err) == 0);
  CHECK (probe_open (fd, "/dev/null") == 0);     /* the last rule wins */
  CHECK (probe_open (fd, "/dev/zero") == EPERM); /* nothing matches: deny */

  CHECK (ocirun_devices_ebpf_apply (fd, dir, allow_then_deny_block, 2, &err) == 0);
  CHECK (probe_open (fd, "/dev/null") == 0);
  CHECK (ocirun_devices_ebpf_count (fd, NULL) == 1);

  close (fd);
  fd = -1;
  CHECK (rmdir (dir) == 0);
}

static void
test_v2 (const struct ocirun_cgroup_layout *v2)
{
  cleanup_error ocirun_error_t err = NULL;
  cleanup_free char *path = NULL;
  cleanup_free char *bad = NULL;
  struct ocirun_cgroup *cg = NULL;
  struct ocirun_cgroup_request req = { 0 };
  struct ocirun_cgroup_dir *d;
  bool frozen = true;
  pid_t a, b;
  int ret, status;

  xasprintf (&path, "%s/v2/ctr", top);
  req.id = "x";
  req.cgroups_path = path;
  ret = ocirun_cgroup_create_in (v2, NULL, &req, &cg, &err);
  if (ret < 0)
    fprintf (stderr, "v2 create: %s\n", err->msg);
  CHECK (ret == 0 && cg);
  if (cg == NULL)
    return;
  d = ocirun_cgroup_unified (cg);
  CHECK (d && exists (d->abs));
  CHECK (ocirun_cgroup_clone_fd (cg) >= 0);

  /* CLONE_INTO_CGROUP through the fd */
  a = clone_into (ocirun_cgroup_clone_fd (cg));
  CHECK (a > 0);
  {
    char p[64], want[4096];
    cleanup_free char *text = NULL;
    snprintf (p, sizeof p, "/proc/%d/cgroup", (int)a);
    text = slurp (p);
    snprintf (want, sizeof want, "0::%s\n", path);
    CHECK (contains (text, want));
  }
  b = spawn_sleeper ();
  CHECK (ocirun_cgroup_enter (cg, b, &err) == 0);
  {
    cleanup_free pid_t *pids = NULL;
    size_t n = 0;
    CHECK (ocirun_cgroup_pids (cg, &pids, &n, &err) == 0 && n == 2);
  }

  /* exec --cgroup: a sub-cgroup by path; ".." never leaves the container's
   * cgroup; no controller names on v2; the sub-cgroup must exist. */
  {
    char sub[4096];
    char *one[] = { (char *)"sub" }, *up[] = { (char *)"../../.." }, *ctrl[] = { (char *)"pids:sub" },
         *missing[] = { (char *)"nosuch" };
    struct ocirun_cgroup *s = NULL;
    snprintf (sub, sizeof sub, "%s/sub", d->abs);
    CHECK (mkdir (sub, 0755) == 0);
    CHECK (ocirun_cgroup_sub (cg, one, 1, &s, &err) == 0 && s && s->len == 1);
    if (s)
      CHECK_STREQ (s->dirs[0].abs, sub);
    ocirun_cgroup_free (s);
    s = NULL;
    CHECK (ocirun_cgroup_sub (cg, up, 1, &s, &err) == 0 && s);
    if (s)
      CHECK_STREQ (s->dirs[0].abs, d->abs);
    ocirun_cgroup_free (s);
    s = NULL;
    CHECK (ocirun_cgroup_sub (cg, ctrl, 1, &s, &err) < 0 && s == NULL && strstr (err->msg, "cgroup v2"));
    ocirun_error_free (&err);
    CHECK (ocirun_cgroup_sub (cg, missing, 1, &s, &err) < 0 && s == NULL && strstr (err->msg, "must exist"));
    ocirun_error_free (&err);
    CHECK (rmdir (sub) == 0);
  }

  CHECK (ocirun_cgroup_freeze (cg, true, &err) == 0);
  CHECK_KNOB (d->abs, "cgroup.freeze", "1");
  CHECK (ocirun_cgroup_is_frozen (cg, &frozen, &err) == 0 && frozen);
  CHECK (ocirun_cgroup_freeze (cg, false, &err) == 0);
  CHECK (ocirun_cgroup_is_frozen (cg, &frozen, &err) == 0 && !frozen);

  /* not SIGKILL: freeze, signal each, thaw */
  CHECK (ocirun_cgroup_kill (cg, SIGTERM, &err) == 0);
  status = reap (a);
  CHECK (WIFSIGNALED (status) && WTERMSIG (status) == SIGTERM);
  status = reap (b);
  CHECK (WIFSIGNALED (status) && WTERMSIG (status) == SIGTERM);
  /* SIGKILL: cgroup.kill */
  b = spawn_sleeper ();
  CHECK (ocirun_cgroup_enter (cg, b, &err) == 0);
  CHECK (ocirun_cgroup_kill (cg, SIGKILL, &err) == 0);
  status = reap (b);
  CHECK (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);

  ret = ocirun_cgroup_destroy (cg, &err);
  if (ret < 0)
    fprintf (stderr, "v2 destroy: %s\n", err->msg);
  CHECK (ret == 0 && !exists (d->abs));
  ocirun_cgroup_free (cg);
  cg = NULL;

  /* A limit whose controller the tree lacks is an error naming it, and the
   * half-made cgroup is gone. */
  xasprintf (&bad, "%s/bad", top);
  {
    oci_resources *r = parse_resources ("{\"pids\":{\"limit\":10}}");
    char p[4096];
    req.cgroups_path = bad;
    req.resources = r;
    ret = ocirun_cgroup_create_in (v2, NULL, &req, &cg, &err);
    cleanup_free char *ctrls = knob (v2->h[0].mountpoint, "cgroup.controllers");
    if (ctrls && !strstr (ctrls, "pids"))
      {
        CHECK (ret < 0 && err && strstr (err->msg, "linux.resources.pids.limit: `pids.max` does not exist"));
        snprintf (p, sizeof p, "%s%s", v2->h[0].mountpoint, bad);
        CHECK (!exists (p));
      }
    if (cg)
      {
        ocirun_cgroup_destroy (cg, NULL);
        ocirun_cgroup_free (cg);
        cg = NULL;
      }
    oci_resources_free (r);
  }
  test_v2_devices (v2, &req);
  {
    oci_resources *r = parse_resources ("{\"unified\":{\"cgroup.max.descendants\":\"7\"}}");
    req.resources = r;
    ret = ocirun_cgroup_create_in (v2, NULL, &req, &cg, &err);
    CHECK (ret == 0 && cg);
    if (cg)
      {
        CHECK_KNOB (ocirun_cgroup_unified (cg)->abs, "cgroup.max.descendants", "7");
        CHECK (ocirun_cgroup_destroy (cg, &err) == 0);
        ocirun_cgroup_free (cg);
        cg = NULL;
      }
    oci_resources_free (r);
  }
}

/* Rootless without a writable hierarchy runs without cgroups, unless it
 * asked for limits or a path (runc). Simulated by dropping to nobody in a
 * child. */
static void
test_rootless (void)
{
  pid_t pid = fork ();
  int status = 0;
  if (pid == 0)
    {
      struct ocirun_cgroup_request req = { 0 };
      struct ocirun_cgroup *cg = (struct ocirun_cgroup *)1;
      oci_resources *r = parse_resources ("{\"pids\":{\"limit\":5}}");
      ocirun_error_t err = NULL;
      int bad = 0;

      if (setgid (65534) < 0 || setuid (65534) < 0)
        _exit (3);
      req.id = id_name;
      req.rootless = true;
      if (ocirun_cgroup_create (&req, &cg, &err) != 0 || cg != NULL)
        bad |= 1;
      req.resources = r;
      if (ocirun_cgroup_create (&req, &cg, &err) == 0 || err == NULL || !strstr (err->msg, "rootless needs no limits"))
        bad |= 2;
      _exit (bad);
    }
  CHECK (pid > 0);
  CHECK (waitpid (pid, &status, 0) == pid);
  if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0))
    fprintf (stderr, "rootless child status %d\n", status);
  CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);
}

/* The v1 controller's model: what the kernel keeps after a list of rules,
 * and what devices.list shows, so that an update writes the difference. */
static void
test_device_rules_model (void)
{
  const struct ocirun_device_rule rules[]
      = {
          { true, 'a', -1, -1, "rwm" }, { false, 'a', -1, -1, "rwm" }, { true, 'c', 1, 3, "rw" },
          { true, 'c', 1, 3, "m" },     { true, 'c', 136, -1, "rwm" }, { false, 'c', 136, -1, "m" },
          { false, 'b', 8, 0, "r" }, /* nothing to take: no-op */
        };
  cleanup_dev_state struct ocirun_dev_state s = { 0 }, l = { 0 }, allow = { 0 };
  const struct ocirun_dev_exception *e;
  ocirun_error_t err = NULL;
  char text[64];

  CHECK (ocirun_dev_state_from_rules (rules, sizeof rules / sizeof rules[0], &s, &err) == 0);
  CHECK (!s.default_allow && s.len == 2);
  e = ocirun_dev_find (&s, 'c', 1, 3);
  CHECK (e && e->perms == (OCIRUN_DEV_R | OCIRUN_DEV_W | OCIRUN_DEV_M));
  e = ocirun_dev_find (&s, 'c', 136, -1);
  CHECK (e && e->perms == (OCIRUN_DEV_R | OCIRUN_DEV_W));
  ocirun_dev_text ('c', 136, -1, OCIRUN_DEV_R | OCIRUN_DEV_W, text, sizeof text);
  CHECK_STREQ (text, "c 136:* rw");

  /* The same state as the kernel lists it, in another order. */
  CHECK (ocirun_dev_state_from_list ("c 136:* rw\nc 1:3 rwm\n", &l, &err) == 0);
  CHECK (ocirun_dev_state_equal (&s, &l));
  CHECK (ocirun_dev_state_from_list ("a *:* rwm\n", &allow, &err) == 0);
  CHECK (allow.default_allow && allow.len == 0 && !ocirun_dev_state_equal (&s, &allow));
  CHECK (ocirun_dev_state_from_list ("c 1:x rwm\n", &l, &err) == -EINVAL);
  CHECK (err && strstr (err->msg, "unexpected line `c 1:x rwm`"));
  ocirun_error_free (&err);

  /* Denying part of an allowed wildcard cannot be expressed. */
  CHECK (ocirun_dev_apply (&s, false, 'c', 136, 4, OCIRUN_DEV_R, &err) == -EINVAL);
  CHECK (err && strstr (err->msg, "`deny c 136:4 r`") && strstr (err->msg, "wildcard rule `c 136:* rw`"));
  ocirun_error_free (&err);
}

int
main (void)
{
  int mode;

  test_clean_path ();
  test_mountinfo ();
  test_device_rules_model ();

  if (geteuid () != 0)
    {
      printf ("not root: skipping the cgroupfs tests\n");
      UNIT_DONE ();
    }
  mode = ocirun_cgroup_mode (NULL);
  if (mode < 0 || ocirun_cgroup_layout_detect (&host, NULL) < 0)
    {
      printf ("no usable cgroup hierarchy: skipping the cgroupfs tests\n");
      UNIT_DONE ();
    }

  snprintf (top, sizeof top, "/ocirun-test-%d", (int)getpid ());
  snprintf (rel_name, sizeof rel_name, "ocirun-rel-%d", (int)getpid ());
  snprintf (id_name, sizeof id_name, "ocirun-id-%d", (int)getpid ());
  signal (SIGINT, on_signal);
  signal (SIGTERM, on_signal);
  atexit (cleanup);

  if (mode == OCIRUN_CGROUP_V1 || mode == OCIRUN_CGROUP_HYBRID)
    {
      test_v1 ();
      test_v1_relative ();
      test_v1_errors ();
    }
  if (mode == OCIRUN_CGROUP_HYBRID || mode == OCIRUN_CGROUP_V2)
    {
      /* On a hybrid host: the cgroup2 tree at /sys/fs/cgroup/unified, driven
       * as if it were the whole host. */
      struct ocirun_cgroup_layout v2 = { 0 };
      v2.mode = OCIRUN_CGROUP_V2;
      for (size_t i = 0; i < host.len; i++)
        if (host.h[i].unified)
          {
            v2.h = &host.h[i];
            v2.len = 1;
          }
      if (v2.len)
        {
          test_ebpf_rules (&v2);
          test_v2 (&v2);
        }
    }
  test_rootless ();

  cleanup ();
  for (size_t i = 0; i < host.len; i++)
    {
      char p[4096];
      snprintf (p, sizeof p, "%s%s", host.h[i].mountpoint, top);
      CHECK (!exists (p));
    }
  ocirun_cgroup_layout_clear (&host);
  UNIT_DONE ();
}
