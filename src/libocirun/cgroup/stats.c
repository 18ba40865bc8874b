#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "../util.h"

/* Usage statistics in the JSON shape of runc's `events` (its types.Stats:
 * field names, order and which zero values Go's omitempty drops), since
 * containerd's shim and others parse it. Built by hand: only libocispec may
 * speak yajl, and these are numbers and fixed keys. */

struct jbuf
{
  char *s;
  size_t len, cap;
};

static void __attribute__ ((format (printf, 2, 3))) jb (struct jbuf *b, const char *fmt, ...)
{
  va_list ap;
  int n;

  for (;;)
    {
      size_t room = b->cap - b->len;
      va_start (ap, fmt);
      n = vsnprintf (b->s ? b->s + b->len : NULL, room, fmt, ap);
      va_end (ap);
      if (n >= 0 && (size_t)n < room)
        {
          b->len += (size_t)n;
          return;
        }
      b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
      b->s = xrealloc (b->s, b->cap);
    }
}

/* Drops a trailing comma before closing an object or array. */
static void
jclose (struct jbuf *b, char c)
{
  if (b->len && b->s[b->len - 1] == ',')
    b->len--;
  jb (b, "%c,", c);
}

static void
jfinish (struct jbuf *b)
{
  if (b->len && b->s[b->len - 1] == ',')
    b->s[--b->len] = '\0';
}

/* A JSON string: the keys and ids here are plain, but be safe. */
static void
jstr (struct jbuf *b, const char *s)
{
  jb (b, "\"");
  for (; *s; s++)
    {
      unsigned char c = (unsigned char)*s;
      if (c == '"' || c == '\\')
        jb (b, "\\%c", c);
      else if (c < 0x20)
        jb (b, "\\u%04x", c);
      else
        jb (b, "%c", c);
    }
  jb (b, "\"");
}

static void
ju64 (struct jbuf *b, const char *key, uint64_t v, bool omitempty)
{
  if (omitempty && v == 0)
    return;
  jb (b, "\"%s\":%" PRIu64 ",", key, v);
}

/* ---------------------------------------------------------------- readers */

static uint64_t
read_u64 (struct ocirun_cgroup_dir *d, const char *file)
{
  uint64_t v = 0;
  if (d == NULL || d->fd < 0 || ocirun_cgroup_read_u64 (d, file, &v, NULL) < 0)
    return 0;
  return v;
}

/* "key value" lines (cpu.stat, memory.stat, cpuacct.stat); 0 when absent. */
static bool
kv_get (const char *text, const char *key, uint64_t *out)
{
  size_t klen = strlen (key);
  for (const char *p = text; p && *p;)
    {
      if (strncmp (p, key, klen) == 0 && p[klen] == ' ')
        {
          *out = strtoull (p + klen + 1, NULL, 10);
          return true;
        }
      p = strchr (p, '\n');
      if (p)
        p++;
    }
  *out = 0;
  return false;
}

static char *
read_text (struct ocirun_cgroup_dir *d, const char *file)
{
  char *s = NULL;
  if (d == NULL || d->fd < 0 || ocirun_cgroup_read (d, file, &s, NULL) < 0)
    return NULL;
  return s;
}

/* A list of numbers ("1 2 3") as a JSON array; nothing when empty. */
static void
jnumbers (struct jbuf *b, const char *key, const char *text)
{
  bool any = false;
  char *end;
  if (text == NULL)
    return;
  for (const char *p = text; *p;)
    {
      uint64_t v = strtoull (p, &end, 10);
      if (end == p)
        {
          p++;
          continue;
        }
      if (!any)
        jb (b, "\"%s\":[", key);
      jb (b, "%" PRIu64 ",", v);
      any = true;
      p = end;
    }
  if (any)
    jclose (b, ']');
}

/* cpuset's "0-3,5" lists as arrays of numbers, omitted when empty. */
static void
jcpulist (struct jbuf *b, const char *key, const char *text)
{
  bool any = false;
  char *end;
  if (text == NULL)
    return;
  for (const char *p = text; *p && *p != '\n';)
    {
      unsigned long lo = strtoul (p, &end, 10), hi;
      if (end == p)
        break;
      hi = lo;
      p = end;
      if (*p == '-')
        {
          hi = strtoul (p + 1, &end, 10);
          p = end;
        }
      for (unsigned long i = lo; i <= hi && i < 65536; i++)
        {
          if (!any)
            jb (b, "\"%s\":[", key);
          jb (b, "%lu,", i);
          any = true;
        }
      if (*p == ',')
        p++;
    }
  if (any)
    jclose (b, ']');
}

/* ------------------------------------------------------------------- cpu */

static void
cpu_stats (struct ocirun_cgroup *cg, struct jbuf *b)
{
  bool v2 = cg->mode == OCIRUN_CGROUP_V2;
  struct ocirun_cgroup_dir *acct = ocirun_cgroup_find (cg, v2 ? "cpu" : "cpuacct");
  struct ocirun_cgroup_dir *cpu = ocirun_cgroup_find (cg, "cpu");
  cleanup_free char *stat = NULL;
  cleanup_free char *cpustat = NULL;
  uint64_t total = 0, user = 0, kernel = 0, periods = 0, throttled = 0, ttime = 0;

  jb (b, "\"cpu\":{\"usage\":{");
  if (v2)
    {
      stat = read_text (cpu, "cpu.stat");
      if (stat)
        {
          kv_get (stat, "usage_usec", &total);
          kv_get (stat, "user_usec", &user);
          kv_get (stat, "system_usec", &kernel);
          kv_get (stat, "nr_periods", &periods);
          kv_get (stat, "nr_throttled", &throttled);
          kv_get (stat, "throttled_usec", &ttime);
        }
      ju64 (b, "total", total * 1000, true);
      ju64 (b, "kernel", kernel * 1000, false);
      ju64 (b, "user", user * 1000, false);
      ttime *= 1000;
    }
  else
    {
      cleanup_free char *percpu = read_text (acct, "cpuacct.usage_percpu");
      cleanup_free char *psys = read_text (acct, "cpuacct.usage_percpu_sys");
      cleanup_free char *puser = read_text (acct, "cpuacct.usage_percpu_user");
      long tck = sysconf (_SC_CLK_TCK);

      ju64 (b, "total", read_u64 (acct, "cpuacct.usage"), true);
      jnumbers (b, "percpu", percpu);
      jnumbers (b, "percpu_kernel", psys);
      jnumbers (b, "percpu_user", puser);
      stat = read_text (acct, "cpuacct.stat");
      if (stat)
        {
          kv_get (stat, "user", &user);
          kv_get (stat, "system", &kernel);
        }
      if (tck <= 0)
        tck = 100;
      ju64 (b, "kernel", kernel * (1000000000ULL / (uint64_t)tck), false);
      ju64 (b, "user", user * (1000000000ULL / (uint64_t)tck), false);
      cpustat = read_text (cpu, "cpu.stat");
      if (cpustat)
        {
          kv_get (cpustat, "nr_periods", &periods);
          kv_get (cpustat, "nr_throttled", &throttled);
          kv_get (cpustat, "throttled_time", &ttime);
        }
    }
  jclose (b, '}');
  jb (b, "\"throttling\":{");
  ju64 (b, "periods", periods, true);
  ju64 (b, "throttled_periods", throttled, true);
  ju64 (b, "throttled_time", ttime, true);
  jclose (b, '}');
  jclose (b, '}');
}

static void
cpuset_stats (struct ocirun_cgroup *cg, struct jbuf *b)
{
  struct ocirun_cgroup_dir *d = ocirun_cgroup_find (cg, "cpuset");
  bool v2 = cg->mode == OCIRUN_CGROUP_V2;
  /* runc 1.1 fills cpus and mems only from v1 files (omitted when empty):
   * on v2 containerd sees them absent, so they are left out here too. */
  cleanup_free char *cpus = v2 ? NULL : read_text (d, "cpuset.cpus");
  cleanup_free char *mems = v2 ? NULL : read_text (d, "cpuset.mems");
  static const char *const knobs[][2] = {
    { "mem_hardwall", "cpuset.mem_hardwall" },
    { "mem_exclusive", "cpuset.mem_exclusive" },
    { "memory_migrate", "cpuset.memory_migrate" },
    { "memory_spread_page", "cpuset.memory_spread_page" },
    { "memory_spread_slab", "cpuset.memory_spread_slab" },
    { "memory_pressure", "cpuset.memory_pressure" },
    { "sched_load_balance", "cpuset.sched_load_balance" },
  };
  cleanup_free char *relax = NULL;

  jb (b, "\"cpuset\":{");
  jcpulist (b, "cpus", cpus);
  ju64 (b, "cpu_exclusive", v2 ? 0 : read_u64 (d, "cpuset.cpu_exclusive"), false);
  jcpulist (b, "mems", mems);
  for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
    ju64 (b, knobs[i][0], v2 ? 0 : read_u64 (d, knobs[i][1]), false);
  relax = v2 ? NULL : read_text (d, "cpuset.sched_relax_domain_level");
  jb (b, "\"sched_relax_domain_level\":%ld,", relax ? strtol (relax, NULL, 10) : 0L);
  jclose (b, '}');
}

/* ---------------------------------------------------------------- memory */

static void
mem_entry (struct jbuf *b, const char *key, uint64_t limit, uint64_t usage, uint64_t max, uint64_t failcnt)
{
  jb (b, "\"%s\":{", key);
  ju64 (b, "limit", limit, false);
  ju64 (b, "usage", usage, true);
  ju64 (b, "max", max, true);
  ju64 (b, "failcnt", failcnt, false);
  jclose (b, '}');
}

static void
mem_v1_entry (struct ocirun_cgroup_dir *d, struct jbuf *b, const char *key, const char *prefix)
{
  char f[4][64];
  snprintf (f[0], sizeof f[0], "%s.limit_in_bytes", prefix);
  snprintf (f[1], sizeof f[1], "%s.usage_in_bytes", prefix);
  snprintf (f[2], sizeof f[2], "%s.max_usage_in_bytes", prefix);
  snprintf (f[3], sizeof f[3], "%s.failcnt", prefix);
  mem_entry (b, key, read_u64 (d, f[0]), read_u64 (d, f[1]), read_u64 (d, f[2]), read_u64 (d, f[3]));
}

static void
jraw (struct jbuf *b, const char *stat)
{
  bool any = false;
  cleanup_free char *copy = NULL;
  char *save = NULL;
  if (stat == NULL)
    return;
  copy = xstrdup (stat);
  for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *sp = strchr (line, ' ');
      if (sp == NULL)
        continue;
      *sp = '\0';
      if (!any)
        jb (b, "\"raw\":{");
      any = true;
      jstr (b, line);
      jb (b, ":%" PRIu64 ",", (uint64_t)strtoull (sp + 1, NULL, 10));
    }
  if (any)
    jclose (b, '}');
}

static void
memory_stats (struct ocirun_cgroup *cg, struct jbuf *b)
{
  struct ocirun_cgroup_dir *d = ocirun_cgroup_find (cg, "memory");
  cleanup_free char *stat = read_text (d, "memory.stat");
  uint64_t cache = 0;

  jb (b, "\"memory\":{");
  if (cg->mode == OCIRUN_CGROUP_V2)
    {
      if (stat)
        kv_get (stat, "file", &cache);
      ju64 (b, "cache", cache, true);
      mem_entry (b, "usage", read_u64 (d, "memory.max"), read_u64 (d, "memory.current"), 0, 0);
      mem_entry (b, "swap", read_u64 (d, "memory.swap.max"), read_u64 (d, "memory.swap.current"), 0, 0);
      mem_entry (b, "kernel", 0, 0, 0, 0);
      mem_entry (b, "kernelTCP", 0, 0, 0, 0);
    }
  else
    {
      if (stat)
        kv_get (stat, "cache", &cache);
      ju64 (b, "cache", cache, true);
      mem_v1_entry (d, b, "usage", "memory");
      mem_v1_entry (d, b, "swap", "memory.memsw");
      mem_v1_entry (d, b, "kernel", "memory.kmem");
      mem_v1_entry (d, b, "kernelTCP", "memory.kmem.tcp");
    }
  jraw (b, stat);
  jclose (b, '}');
}

/* ------------------------------------------------------------------ pids */

static void
pids_stats (struct ocirun_cgroup *cg, struct jbuf *b)
{
  struct ocirun_cgroup_dir *d = ocirun_cgroup_find (cg, "pids");
  uint64_t limit = read_u64 (d, "pids.max");

  jb (b, "\"pids\":{");
  ju64 (b, "current", read_u64 (d, "pids.current"), true);
  ju64 (b, "limit", limit == UINT64_MAX ? 0 : limit, true);
  jclose (b, '}');
}

/* ----------------------------------------------------------------- blkio */

/* v1 "MAJ:MIN Op value" lines (a last "Total N" line is skipped). */
static void
blkio_v1_list (struct jbuf *b, const char *key, const char *text)
{
  bool any = false;
  cleanup_free char *copy = NULL;
  char *save = NULL;

  if (text == NULL)
    return;
  copy = xstrdup (text);
  for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      unsigned long maj, min;
      char op[32];
      uint64_t v;
      if (sscanf (line, "%lu:%lu %31s %" SCNu64, &maj, &min, op, &v) != 4)
        continue;
      if (!any)
        jb (b, "\"%s\":[", key);
      any = true;
      jb (b, "{");
      ju64 (b, "major", maj, true);
      ju64 (b, "minor", min, true);
      jb (b, "\"op\":");
      jstr (b, op);
      jb (b, ",");
      ju64 (b, "value", v, true);
      jclose (b, '}');
    }
  if (any)
    jclose (b, ']');
}

static void
blkio_entry (struct jbuf *b, unsigned long maj, unsigned long min, const char *op, uint64_t v)
{
  jb (b, "{");
  ju64 (b, "major", maj, true);
  ju64 (b, "minor", min, true);
  jb (b, "\"op\":\"%s\",", op);
  ju64 (b, "value", v, true);
  jclose (b, '}');
}

/* v2 io.stat "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." */
static void
blkio_v2 (struct jbuf *b, const char *text, bool bytes)
{
  bool any = false;
  cleanup_free char *copy = NULL;
  char *save = NULL;

  if (text == NULL)
    return;
  copy = xstrdup (text);
  for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      unsigned long maj, min;
      const char *r, *w;
      if (sscanf (line, "%lu:%lu", &maj, &min) != 2)
        continue;
      r = strstr (line, bytes ? "rbytes=" : "rios=");
      w = strstr (line, bytes ? "wbytes=" : "wios=");
      if (!any)
        jb (b, "\"%s\":[", bytes ? "ioServiceBytesRecursive" : "ioServicedRecursive");
      any = true;
      if (r)
        blkio_entry (b, maj, min, "Read", strtoull (strchr (r, '=') + 1, NULL, 10));
      if (w)
        blkio_entry (b, maj, min, "Write", strtoull (strchr (w, '=') + 1, NULL, 10));
    }
  if (any)
    jclose (b, ']');
}

static void
blkio_stats (struct ocirun_cgroup *cg, struct jbuf *b)
{
  jb (b, "\"blkio\":{");
  if (cg->mode == OCIRUN_CGROUP_V2)
    {
      cleanup_free char *io = read_text (ocirun_cgroup_find (cg, "io"), "io.stat");
      blkio_v2 (b, io, true);
      blkio_v2 (b, io, false);
    }
  else
    {
      struct ocirun_cgroup_dir *d = ocirun_cgroup_find (cg, "blkio");
      cleanup_free char *bytes = read_text (d, "blkio.io_service_bytes_recursive");
      cleanup_free char *ios = NULL;
      /* Without CFQ/BFQ accounting runc falls back to the throttle files. */
      if (bytes == NULL || *bytes == '\0' || strncmp (bytes, "Total 0", 7) == 0)
        {
          free (bytes);
          bytes = read_text (d, "blkio.throttle.io_service_bytes_recursive");
          ios = read_text (d, "blkio.throttle.io_serviced_recursive");
        }
      else
        ios = read_text (d, "blkio.io_serviced_recursive");
      blkio_v1_list (b, "ioServiceBytesRecursive", bytes);
      blkio_v1_list (b, "ioServicedRecursive", ios);
    }
  jclose (b, '}');
}

/* --------------------------------------------------------------- hugetlb */

static void
hugetlb_stats (struct ocirun_cgroup *cg, struct jbuf *b)
{
  struct ocirun_cgroup_dir *d = ocirun_cgroup_find (cg, "hugetlb");
  bool v2 = cg->mode == OCIRUN_CGROUP_V2;
  cleanup_dir DIR *dir = NULL;
  struct dirent *de;
  int fd;

  jb (b, "\"hugetlb\":{");
  if (d && d->fd >= 0 && (fd = openat (d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
    {
      dir = fdopendir (fd);
      if (dir == NULL)
        close (fd);
      while (dir && (de = readdir (dir)))
        {
          const char *suffix = v2 ? ".current" : ".usage_in_bytes";
          size_t n = strlen (de->d_name), sl = strlen (suffix);
          char size[32], f[96];
          uint64_t usage, max, failcnt;
          if (strncmp (de->d_name, "hugetlb.", 8) != 0 || n <= 8 + sl || strcmp (de->d_name + n - sl, suffix) != 0
              || n - 8 - sl >= sizeof size || strstr (de->d_name, ".rsvd."))
            continue;
          memcpy (size, de->d_name + 8, n - 8 - sl);
          size[n - 8 - sl] = '\0';
          usage = read_u64 (d, de->d_name);
          snprintf (f, sizeof f, v2 ? "hugetlb.%s.max" : "hugetlb.%s.max_usage_in_bytes", size);
          max = v2 ? 0 : read_u64 (d, f);
          failcnt = 0;
          if (v2)
            {
              cleanup_free char *ev = NULL;
              snprintf (f, sizeof f, "hugetlb.%s.events", size);
              ev = read_text (d, f);
              if (ev)
                kv_get (ev, "max", &failcnt);
            }
          else
            {
              snprintf (f, sizeof f, "hugetlb.%s.failcnt", size);
              failcnt = read_u64 (d, f);
            }
          jstr (b, size);
          jb (b, ":{");
          ju64 (b, "usage", usage, true);
          ju64 (b, "max", max, true);
          ju64 (b, "failcnt", failcnt, false);
          jclose (b, '}');
        }
    }
  jclose (b, '}');
}

int
ocirun_cgroup_stats_json (struct ocirun_cgroup *cg, const char *id, char **out, ocirun_error_t *err)
{
  struct jbuf b = { NULL, 0, 0 };

  (void)err;
  jb (&b, "{\"type\":\"stats\",\"id\":");
  jstr (&b, id);
  jb (&b, ",\"data\":{");
  cpu_stats (cg, &b);
  cpuset_stats (cg, &b);
  memory_stats (cg, &b);
  pids_stats (cg, &b);
  blkio_stats (cg, &b);
  hugetlb_stats (cg, &b);
  jb (&b, "\"intel_rdt\":{},\"network_interfaces\":null}}");
  jfinish (&b);
  *out = b.s;
  return 0;
}

/* ------------------------------------------------------------------- oom */

struct ocirun_cgroup_oom
{
  int fd;         /* eventfd (v1) or inotify (v2), what callers poll */
  int control;    /* v1: memory.oom_control, kept open for the eventfd */
  uint64_t kills; /* v2: the oom_kill count last seen */
  struct ocirun_cgroup_dir *d;
};

static uint64_t
oom_kills (struct ocirun_cgroup_dir *d)
{
  cleanup_free char *ev = read_text (d, "memory.events");
  uint64_t v = 0;
  if (ev)
    kv_get (ev, "oom_kill", &v);
  return v;
}

int
ocirun_cgroup_oom_open (struct ocirun_cgroup *cg, struct ocirun_cgroup_oom **out, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d = ocirun_cgroup_find (cg, "memory");
  struct ocirun_cgroup_oom *o;
  char buf[64];

  *out = NULL;
  if (d == NULL || d->fd < 0)
    return 0; /* no memory controller: no OOM events to report */
  o = xmalloc0 (sizeof *o);
  o->d = d;
  o->control = -1;
  o->fd = -1;
  if (cg->mode == OCIRUN_CGROUP_V2)
    {
      cleanup_free char *path = NULL;
      o->fd = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
      if (o->fd < 0)
        goto fail_errno;
      xasprintf (&path, "%s/memory.events", d->abs);
      if (inotify_add_watch (o->fd, path, IN_MODIFY) < 0)
        goto fail_errno;
      o->kills = oom_kills (d);
    }
  else
    {
      o->control = openat (d->fd, "memory.oom_control", O_RDONLY | O_CLOEXEC);
      if (o->control < 0)
        goto fail_errno;
      o->fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (o->fd < 0)
        goto fail_errno;
      snprintf (buf, sizeof buf, "%d %d", o->fd, o->control);
      if (ocirun_cgroup_write (d, "memory OOM notification", "cgroup.event_control", buf, NULL, err) < 0)
        {
          ocirun_cgroup_oom_close (o);
          return -1;
        }
    }
  *out = o;
  return 0;

fail_errno:
  {
    int e = errno;
    ocirun_cgroup_oom_close (o);
    return ocirun_make_error (err, e, "cgroup `%s`: OOM notification", d->abs);
  }
}

int
ocirun_cgroup_oom_fd (struct ocirun_cgroup_oom *o)
{
  return o ? o->fd : -1;
}

int
ocirun_cgroup_oom_read (struct ocirun_cgroup_oom *o, unsigned *count)
{
  *count = 0;
  if (o == NULL)
    return 0;
  if (o->control >= 0)
    {
      uint64_t v;
      /* Removing the cgroup signals the eventfd too: that is no OOM. */
      if (read (o->fd, &v, sizeof v) == (ssize_t)sizeof v && ocirun_cgroup_has_file (o->d, "cgroup.event_control"))
        *count = (unsigned)v;
    }
  else
    {
      char buf[4096];
      uint64_t now;
      while (read (o->fd, buf, sizeof buf) > 0)
        ;
      now = oom_kills (o->d);
      if (now > o->kills)
        *count = (unsigned)(now - o->kills);
      o->kills = now;
    }
  return 0;
}

void
ocirun_cgroup_oom_close (struct ocirun_cgroup_oom *o)
{
  if (o == NULL)
    return;
  if (o->fd >= 0)
    close (o->fd);
  if (o->control >= 0)
    close (o->control);
  free (o);
}
