#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dlfcn.h>

#include "../dlopen.h"
#include "../error.h"
#include <systemd/sd-bus.h>

/* libsystemd (with libgcrypt, liblzma, libzstd, liblz4 behind it) costs every
 * ocirun command about 0.4 ms and 1 MiB of RSS when linked; only
 * --systemd-cgroup needs it. So it is loaded on first use, and the names
 * below are redirected to a table of its functions. The table is filled
 * once per process and never changes after: a cache, not state. */
#define SDBUS_FUNCS(X)                                                                                                 \
  X (sd_bus_open_system)                                                                                               \
  X (sd_bus_open_user)                                                                                                 \
  X (sd_bus_flush_close_unref)                                                                                         \
  X (sd_bus_message_append)                                                                                            \
  X (sd_bus_message_unref)                                                                                             \
  X (sd_bus_message_read)                                                                                              \
  X (sd_bus_message_open_container)                                                                                    \
  X (sd_bus_message_close_container)                                                                                   \
  X (sd_bus_error_free)                                                                                                \
  X (sd_bus_error_has_name)                                                                                            \
  X (sd_bus_error_is_set)                                                                                              \
  X (sd_bus_call_method)                                                                                               \
  X (sd_bus_slot_unref)                                                                                                \
  X (sd_bus_message_new_method_call)                                                                                   \
  X (sd_bus_match_signal)                                                                                              \
  X (sd_bus_call)                                                                                                      \
  X (sd_bus_wait)                                                                                                      \
  X (sd_bus_process)                                                                                                   \
  X (sd_bus_message_append_array)                                                                                      \
  X (sd_bus_get_property_string)

static struct
{
#define X(f) __typeof__ (f) *f;
  SDBUS_FUNCS (X)
#undef X
} sdbus;

static int
sdbus_load (ocirun_error_t *err)
{
  void *h;

  if (sdbus.sd_bus_open_system)
    return 0;
  h = ocirun_dlopen ("libsystemd.so.0", err);
  if (h == NULL)
    return ocirun_error_prefix (err, "systemd cgroup driver");
#define X(f)                                                                                                           \
  if ((sdbus.f = (__typeof__ (f) *)dlsym (h, #f)) == NULL)                                                             \
    return ocirun_make_error (err, -ENOENT, "systemd cgroup driver: libsystemd.so.0 has no %s", #f);
  SDBUS_FUNCS (X)
#undef X
  return 0;
}

#include "devices-rules.h"
#include "systemd.h"
#include "../util.h"

#define sd_bus_open_system (sdbus.sd_bus_open_system)
#define sd_bus_open_user (sdbus.sd_bus_open_user)
#define sd_bus_flush_close_unref (sdbus.sd_bus_flush_close_unref)
#define sd_bus_message_append (sdbus.sd_bus_message_append)
#define sd_bus_message_unref (sdbus.sd_bus_message_unref)
#define sd_bus_message_read (sdbus.sd_bus_message_read)
#define sd_bus_message_open_container (sdbus.sd_bus_message_open_container)
#define sd_bus_message_close_container (sdbus.sd_bus_message_close_container)
#define sd_bus_error_free (sdbus.sd_bus_error_free)
#define sd_bus_error_has_name (sdbus.sd_bus_error_has_name)
#define sd_bus_error_is_set (sdbus.sd_bus_error_is_set)
#define sd_bus_call_method (sdbus.sd_bus_call_method)
#define sd_bus_slot_unref (sdbus.sd_bus_slot_unref)
#define sd_bus_message_new_method_call (sdbus.sd_bus_message_new_method_call)
#define sd_bus_match_signal (sdbus.sd_bus_match_signal)
#define sd_bus_call (sdbus.sd_bus_call)
#define sd_bus_wait (sdbus.sd_bus_wait)
#define sd_bus_process (sdbus.sd_bus_process)
#define sd_bus_message_append_array (sdbus.sd_bus_message_append_array)
#define sd_bus_get_property_string (sdbus.sd_bus_get_property_string)

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define JOB_TIMEOUT_USEC (30ULL * 1000000ULL)

/* What a systemd-managed cgroup remembers besides its directories. */
struct ocirun_systemd_unit
{
  char *name;
  /* In the caller's user manager (rootless), not the system one. */
  bool user;
  /* exec --cgroup: the sub-cgroup (from the unit's cgroup, "/a/b") a process
   * is attached to; NULL: the unit's own. */
  char *subcgroup;
  /* A process of ours that holds the scope open from its creation until the
   * container's init is in it: systemd refuses an empty scope and stops one
   * whose last process leaves. Killed and reaped on free. */
  pid_t holder;
};

/* ------------------------------------------------------ names and paths */

static bool
valid_unit_chars (const char *s)
{
  for (; *s; s++)
    if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') || strchr (":-_.\\@", *s)))
      return false;
  return true;
}

static bool
has_suffix (const char *s, const char *suffix)
{
  size_t a = strlen (s), b = strlen (suffix);
  return a >= b && strcmp (s + a - b, suffix) == 0;
}

int
ocirun_systemd_parse_path (const char *cgroups_path, const char *id, bool user, char **slice, char **unit,
                           ocirun_error_t *err)
{
  cleanup_free char *copy = NULL;
  char *c1, *c2, *name, *prefix;

  *slice = *unit = NULL;
  if (cgroups_path == NULL || *cgroups_path == '\0')
    {
      if (id == NULL || *id == '\0')
        return ocirun_make_error (err, -EINVAL, "systemd cgroup driver: no container id");
      xasprintf (&copy, ":ocirun:%s", id);
    }
  else
    copy = xstrdup (cgroups_path);

  c1 = strchr (copy, ':');
  c2 = c1 ? strchr (c1 + 1, ':') : NULL;
  if (c1 == NULL || c2 == NULL || strchr (c2 + 1, ':'))
    return ocirun_make_error (err, -EINVAL,
                              "systemd cgroup driver: expected linux.cgroupsPath to be of format "
                              "\"slice:prefix:name\", got `%s`",
                              cgroups_path);
  *c1 = *c2 = '\0';
  prefix = c1 + 1;
  name = c2 + 1;
  if (*name == '\0')
    return ocirun_make_error (err, -EINVAL, "systemd cgroup driver: `%s`: the unit name is empty", cgroups_path);
  if (strchr (copy, '/') || strchr (prefix, '/') || strchr (name, '/') || !valid_unit_chars (copy)
      || !valid_unit_chars (prefix) || !valid_unit_chars (name))
    return ocirun_make_error (err, -EINVAL, "systemd cgroup driver: `%s`: invalid character in a unit name",
                              cgroups_path);
  if (has_suffix (name, ".slice"))
    return ocirun_make_error (
        err, -EINVAL, "systemd cgroup driver: `%s`: a slice as the container's unit is not supported", cgroups_path);

  /* runc's defaults: a user manager has no system.slice of its own. */
  *slice = xstrdup (*copy ? copy : user ? "user.slice" : "system.slice");
  if (*prefix)
    xasprintf (unit, "%s-%s.scope", prefix, name);
  else
    xasprintf (unit, "%s.scope", name);
  return 0;
}

int
ocirun_systemd_expand_slice (const char *slice, char **out, ocirun_error_t *err)
{
  size_t len = strlen (slice), blen;
  cleanup_free char *base = NULL;
  char *res = NULL;
  size_t rlen = 0;

  *out = NULL;
  if (!has_suffix (slice, ".slice") || len <= 6 || strchr (slice, '/'))
    return ocirun_make_error (err, -EINVAL, "systemd cgroup driver: invalid slice name `%s`", slice);
  if (strcmp (slice, "-.slice") == 0)
    {
      *out = xstrdup ("/");
      return 0;
    }
  base = xstrdup (slice);
  base[len - 6] = '\0';
  blen = strlen (base);
  if (base[0] == '-' || base[blen - 1] == '-' || strstr (base, "--"))
    return ocirun_make_error (err, -EINVAL, "systemd cgroup driver: invalid slice name `%s`", slice);

  /* Every dash starts a parent: a-b-c.slice lives in a.slice/a-b.slice. */
  for (size_t i = 0; i <= blen; i++)
    {
      if (base[i] != '-' && base[i] != '\0')
        continue;
      res = xrealloc (res, rlen + 1 + i + 7);
      res[rlen++] = '/';
      memcpy (res + rlen, base, i);
      rlen += i;
      memcpy (res + rlen, ".slice", 7);
      rlen += 6;
    }
  *out = res;
  return 0;
}

int
ocirun_systemd_cpuset_mask (const char *list, uint8_t **mask, size_t *len, ocirun_error_t *err)
{
  const char *p = list;

  *mask = NULL;
  *len = 0;
  while (*p)
    {
      char *end;
      unsigned long a, b;

      while (*p == ' ' || *p == '\n')
        p++;
      if (*p == '\0')
        break;
      errno = 0;
      a = strtoul (p, &end, 10);
      if (end == p || errno)
        goto bad;
      b = a;
      p = end;
      if (*p == '-')
        {
          p++;
          b = strtoul (p, &end, 10);
          if (end == p || errno || b < a)
            goto bad;
          p = end;
        }
      if (b >= 8192)
        goto bad;
      if (b / 8 + 1 > *len)
        {
          *mask = xrealloc (*mask, b / 8 + 1);
          memset (*mask + *len, 0, b / 8 + 1 - *len);
          *len = b / 8 + 1;
        }
      for (unsigned long i = a; i <= b; i++)
        (*mask)[i / 8] |= (uint8_t)(1u << (i % 8));
      while (*p == ' ' || *p == '\n')
        p++;
      if (*p == ',')
        p++;
      else if (*p)
        goto bad;
    }
  return 0;

bad:
  free (*mask);
  *mask = NULL;
  *len = 0;
  return ocirun_make_error (err, -EINVAL, "invalid cpuset list `%s`", list);
}

/* ----------------------------------------------------------- properties */

static void
prop_add (struct ocirun_systemd_props *p, const char *name, char type, uint64_t u)
{
  p->p = xrealloc (p->p, (p->len + 1) * sizeof *p->p);
  p->p[p->len++] = (struct ocirun_systemd_prop){ .name = name, .type = type, .u = u };
}

void
ocirun_systemd_props_clear (struct ocirun_systemd_props *p)
{
  for (size_t i = 0; i < p->len; i++)
    {
      free (p->p[i].bytes);
      free (p->p[i].str);
      for (size_t j = 0; j < p->p[i].pairs_len * 2; j++)
        free (p->p[i].pairs[j]);
      free (p->p[i].pairs);
    }
  free (p->p);
  p->p = NULL;
  p->len = 0;
}

const struct ocirun_systemd_prop *
ocirun_systemd_props_find (const struct ocirun_systemd_props *p, const char *name)
{
  for (size_t i = 0; i < p->len; i++)
    if (strcmp (p->p[i].name, name) == 0)
      return &p->p[i];
  return NULL;
}

/* OCI's -1 is systemd's "infinity". */
static uint64_t
limit_value (int64_t v)
{
  return v < 0 ? UINT64_MAX : (uint64_t)v;
}

static int
add_cpuset (struct ocirun_systemd_props *out, const char *name, const char *list, const char *setting,
            ocirun_error_t *err)
{
  uint8_t *mask = NULL;
  size_t len = 0;
  int ret;

  if (list == NULL || *list == '\0')
    return 0;
  ret = ocirun_systemd_cpuset_mask (list, &mask, &len, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "%s", setting);
  prop_add (out, name, 'y', 0);
  out->p[out->len - 1].bytes = mask;
  out->p[out->len - 1].bytes_len = len;
  return 0;
}

int
ocirun_systemd_resource_props (const oci_resources *r, enum ocirun_cgroup_mode mode, struct ocirun_systemd_props *out,
                               ocirun_error_t *err)
{
  bool v2 = mode == OCIRUN_CGROUP_V2;
  int ret;

  memset (out, 0, sizeof *out);
  if (r == NULL)
    return 0;

  if (r->memory)
    {
      const oci_memory *m = r->memory;
      if (m->has_limit && m->limit != 0)
        prop_add (out, v2 ? "MemoryMax" : "MemoryLimit", 't', limit_value (m->limit));
      if (v2 && m->has_reservation && m->reservation > 0)
        prop_add (out, "MemoryLow", 't', (uint64_t)m->reservation);
      /* OCI's swap is memory+swap; systemd's MemorySwapMax is swap alone. */
      if (v2 && m->has_swap && m->swap != 0)
        {
          if (m->swap < 0)
            prop_add (out, "MemorySwapMax", 't', UINT64_MAX);
          else if (m->has_limit && m->limit > 0)
            {
              if (m->swap < m->limit)
                {
                  ret = ocirun_make_error (err, -EINVAL,
                                           "linux.resources.memory.swap (%" PRId64
                                           ") must not be lower than memory.limit (%" PRId64 ")",
                                           m->swap, m->limit);
                  goto fail;
                }
              prop_add (out, "MemorySwapMax", 't', (uint64_t)(m->swap - m->limit));
            }
        }
    }

  if (r->cpu)
    {
      const oci_cpu *c = r->cpu;
      if (c->has_shares && c->shares)
        {
          uint64_t s = c->shares;
          if (v2)
            {
              if (s < 2)
                s = 2;
              if (s > 262144)
                s = 262144;
              prop_add (out, "CPUWeight", 't', 1 + ((s - 2) * 9999) / 262142);
            }
          else
            prop_add (out, "CPUShares", 't', s);
        }
      if ((c->has_quota && c->quota != 0) || (c->has_period && c->period != 0))
        {
          uint64_t period = c->has_period && c->period ? c->period : 100000;
          uint64_t per_sec = UINT64_MAX;
          if (c->has_period && c->period)
            prop_add (out, "CPUQuotaPeriodUSec", 't', c->period);
          if (c->has_quota && c->quota > 0)
            {
              /* systemd keeps the quota in whole percent of a CPU: round up
               * so the container never gets less than it asked for. */
              per_sec = (uint64_t)c->quota * 1000000ULL / period;
              if (per_sec % 10000)
                per_sec = (per_sec / 10000 + 1) * 10000;
            }
          prop_add (out, "CPUQuotaPerSecUSec", 't', per_sec);
        }
      if (v2)
        {
          ret = add_cpuset (out, "AllowedCPUs", c->cpus, "linux.resources.cpu.cpus", err);
          if (ret < 0)
            goto fail;
          ret = add_cpuset (out, "AllowedMemoryNodes", c->mems, "linux.resources.cpu.mems", err);
          if (ret < 0)
            goto fail;
        }
    }

  if (r->pids && r->pids->has_limit && (r->pids->limit > 0 || r->pids->limit == -1))
    prop_add (out, "TasksMax", 't', limit_value (r->pids->limit));

  if (r->block_io && r->block_io->has_weight && r->block_io->weight)
    {
      uint64_t w = r->block_io->weight;
      if (v2)
        {
          if (w < 10)
            w = 10;
          if (w > 1000)
            w = 1000;
          prop_add (out, "IOWeight", 't', 1 + (w - 10) * 9999 / 990);
        }
      else
        prop_add (out, "BlockIOWeight", 't', w);
    }
  return 0;

fail:
  ocirun_systemd_props_clear (out);
  return ret;
}

/* -------------------------------------------------------------- devices */

/* runc's order, so that the unit shows the same list: major, minor (any
 * first), type. */
static int
dev_cmp (const void *a, const void *b)
{
  const struct ocirun_dev_exception *x = a, *y = b;
  if (x->major != y->major)
    return x->major < y->major ? -1 : 1;
  if (x->minor != y->minor)
    return x->minor < y->minor ? -1 : 1;
  return (x->type > y->type) - (x->type < y->type);
}

static void
prop_add_str (struct ocirun_systemd_props *p, const char *name, const char *value)
{
  prop_add (p, name, 's', 0);
  p->p[p->len - 1].str = xstrdup (value);
}

int
ocirun_systemd_device_props (const struct ocirun_device_rule *rules, size_t n, struct ocirun_logger *log,
                             struct ocirun_systemd_props *out, ocirun_error_t *err)
{
  cleanup_dev_state struct ocirun_dev_state l = { 0 };
  struct ocirun_systemd_prop *allow;
  int ret;

  ret = ocirun_dev_state_from_rules (rules, n, &l, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "systemd cgroup driver");

  if (l.default_allow && l.len == 0)
    {
      prop_add_str (out, "DevicePolicy", "auto");
      prop_add (out, "DeviceAllow", 'D', 0);
      return 0;
    }
  prop_add_str (out, "DevicePolicy", "strict");
  /* An empty DeviceAllow first: systemd appends to the list otherwise. */
  prop_add (out, "DeviceAllow", 'D', 0);
  if (l.default_allow)
    {
      ocirun_warning (log, "systemd cgroup driver: systemd has no deny-list of devices: the unit denies every device "
                           "and the cgroup's own device rules apply the list");
      return 0;
    }

  qsort (l.ex, l.len, sizeof *l.ex, dev_cmp);
  prop_add (out, "DeviceAllow", 'D', 0);
  allow = &out->p[out->len - 1];
  allow->pairs = xmalloc0 ((l.len ? l.len : 1) * 2 * sizeof (char *));
  for (size_t i = 0; i < l.len; i++)
    {
      const struct ocirun_dev_exception *e = &l.ex[i];
      const char *kind = e->type == 'b' ? "block" : "char";
      char perms[4];
      char *path = NULL;

      if (e->major < 0 && e->minor >= 0)
        {
          char text[64];
          ocirun_dev_text (e->type, e->major, e->minor, e->perms, text, sizeof text);
          ocirun_debug (log,
                        "systemd cgroup driver: device rule `%s` has no DeviceAllow form (any major, one minor); "
                        "only the cgroup's own rules apply it",
                        text);
          continue;
        }
      if (e->major < 0)
        xasprintf (&path, "%s-*", kind);
      else if (e->minor < 0)
        xasprintf (&path, "%s-%" PRId64, kind, e->major); /* systemd >= 240 */
      else
        xasprintf (&path, "/dev/%s/%" PRId64 ":%" PRId64, kind, e->major, e->minor);
      ocirun_dev_perms_text (e->perms, perms);
      allow->pairs[allow->pairs_len * 2] = path;
      allow->pairs[allow->pairs_len * 2 + 1] = xstrdup (perms);
      allow->pairs_len++;
    }
  return 0;
}

/* ---------------------------------------------------------------- D-Bus */

static int
bus_error (ocirun_error_t *err, int r, const sd_bus_error *e, const char *what)
{
  if (e && sd_bus_error_is_set (e))
    return ocirun_make_error (err, -(r < 0 ? -r : EIO), "systemd cgroup driver: %s: %s", what,
                              e->message ? e->message : e->name);
  return ocirun_make_error (err, r < 0 ? -r : EIO, "systemd cgroup driver: %s", what);
}

#define USER_BUS_HINT "(rootless needs a systemd user session: `loginctl enable-linger` and dbus-user-session)"

/* user: the caller's user manager on the user bus, found as sd-bus and
 * runc find it. */
static int
bus_open (sd_bus **bus, bool user, ocirun_error_t *err)
{
  const char *addr, *xdg;
  int r = sdbus_load (err);
  if (r < 0)
    return r;
  if (!user)
    {
      r = sd_bus_open_system (bus);
      if (r < 0)
        return ocirun_make_error (err, -r, "systemd cgroup driver: cannot reach systemd over D-Bus");
      return 0;
    }
  r = sd_bus_open_user (bus);
  if (r >= 0)
    return 0;
  addr = getenv ("DBUS_SESSION_BUS_ADDRESS");
  xdg = getenv ("XDG_RUNTIME_DIR");
  if (addr && *addr)
    return ocirun_make_error (err, -r,
                              "systemd cgroup driver: cannot connect to the user bus `%s` (DBUS_SESSION_BUS_ADDRESS) "
                              "" USER_BUS_HINT,
                              addr);
  if (xdg && *xdg)
    return ocirun_make_error (err, -r,
                              "systemd cgroup driver: cannot connect to the user bus `unix:path=%s/bus` "
                              "($XDG_RUNTIME_DIR/bus) " USER_BUS_HINT,
                              xdg);
  return ocirun_make_error (err, -EHOSTUNREACH,
                            "systemd cgroup driver: no user bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR "
                            "is set " USER_BUS_HINT);
}

static int
unreachable (ocirun_error_t *err, bool user, const sd_bus_error *e)
{
  return ocirun_make_error (err, -EHOSTUNREACH, "systemd cgroup driver: cannot reach %s over D-Bus: %s",
                            user ? "the systemd user manager" : "systemd", e->message ? e->message : e->name);
}

static void
bus_closep (sd_bus **bus)
{
  if (*bus)
    sd_bus_flush_close_unref (*bus);
}
#define cleanup_bus __attribute__ ((cleanup (bus_closep)))

static bool
unreachable_error (const sd_bus_error *e)
{
  return sd_bus_error_has_name (e, SD_BUS_ERROR_SERVICE_UNKNOWN)
         || sd_bus_error_has_name (e, SD_BUS_ERROR_NAME_HAS_NO_OWNER)
         || sd_bus_error_has_name (e, SD_BUS_ERROR_NO_REPLY) || sd_bus_error_has_name (e, SD_BUS_ERROR_DISCONNECTED);
}

struct job_wait
{
  const char *job; /* object path of the job we wait for */
  char *result;    /* "done", "failed", ... once it is removed */
};

static int
on_job_removed (sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
  struct job_wait *w = userdata;
  const char *path = NULL, *unit = NULL, *result = NULL;
  uint32_t id;

  (void)ret_error;
  if (sd_bus_message_read (m, "uoss", &id, &path, &unit, &result) < 0)
    return 0;
  if (w->job && path && strcmp (path, w->job) == 0 && w->result == NULL)
    w->result = xstrdup (result ? result : "");
  return 0;
}

/* Runs the bus until the JobRemoved signal for w->job arrived. */
static int
wait_job (sd_bus *bus, struct job_wait *w, const char *unit, const char *what, ocirun_error_t *err)
{
  struct timespec ts;
  uint64_t deadline;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  deadline = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000 + JOB_TIMEOUT_USEC;
  while (w->result == NULL)
    {
      uint64_t now;
      int r = sd_bus_process (bus, NULL);
      if (r < 0)
        return ocirun_make_error (err, -r, "systemd cgroup driver: %s `%s`: wait for the job", what, unit);
      if (r > 0)
        continue;
      clock_gettime (CLOCK_MONOTONIC, &ts);
      now = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
      if (now >= deadline)
        return ocirun_make_error (err, -ETIMEDOUT, "systemd cgroup driver: %s `%s`: the job did not finish in %llus",
                                  what, unit, (unsigned long long)(JOB_TIMEOUT_USEC / 1000000));
      r = sd_bus_wait (bus, deadline - now);
      if (r < 0)
        return ocirun_make_error (err, -r, "systemd cgroup driver: %s `%s`: wait for the job", what, unit);
    }
  if (strcmp (w->result, "done") != 0)
    return ocirun_make_error (err, -EIO, "systemd cgroup driver: %s `%s`: the job ended with `%s`", what, unit,
                              w->result);
  return 0;
}

static int
append_props (sd_bus_message *m, const struct ocirun_systemd_props *props)
{
  int r = 0;
  for (size_t i = 0; i < props->len && r >= 0; i++)
    {
      const struct ocirun_systemd_prop *p = &props->p[i];
      if (p->type == 't')
        r = sd_bus_message_append (m, "(sv)", p->name, "t", p->u);
      else if (p->type == 'b')
        r = sd_bus_message_append (m, "(sv)", p->name, "b", (int)p->u);
      else if (p->type == 's')
        r = sd_bus_message_append (m, "(sv)", p->name, "s", p->str);
      else if (p->type == 'D')
        {
          r = sd_bus_message_open_container (m, 'r', "sv");
          if (r >= 0)
            r = sd_bus_message_append (m, "s", p->name);
          if (r >= 0)
            r = sd_bus_message_open_container (m, 'v', "a(ss)");
          if (r >= 0)
            r = sd_bus_message_open_container (m, 'a', "(ss)");
          for (size_t j = 0; j < p->pairs_len && r >= 0; j++)
            r = sd_bus_message_append (m, "(ss)", p->pairs[j * 2], p->pairs[j * 2 + 1]);
          for (int k = 0; k < 3 && r >= 0; k++)
            r = sd_bus_message_close_container (m);
        }
      else
        {
          r = sd_bus_message_open_container (m, 'r', "sv");
          if (r >= 0)
            r = sd_bus_message_append (m, "s", p->name);
          if (r >= 0)
            r = sd_bus_message_open_container (m, 'v', "ay");
          if (r >= 0)
            r = sd_bus_message_append_array (m, 'y', p->bytes, p->bytes_len);
          if (r >= 0)
            r = sd_bus_message_close_container (m);
          if (r >= 0)
            r = sd_bus_message_close_container (m);
        }
    }
  return r;
}

/* The scope's cgroup as systemd reports it (ControlGroup property). */
static int
unit_cgroup (sd_bus *bus, const char *unit, char **out, ocirun_error_t *err)
{
  sd_bus_error e = SD_BUS_ERROR_NULL;
  sd_bus_message *reply = NULL;
  const char *obj = NULL;
  char *cg = NULL;
  int r, ret = 0;

  r = sd_bus_call_method (bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", &e, &reply, "s", unit);
  if (r >= 0)
    r = sd_bus_message_read (reply, "o", &obj);
  if (r < 0)
    {
      ret = bus_error (err, r, &e, "GetUnit");
      goto out;
    }
  r = sd_bus_get_property_string (bus, SD_DEST, obj, "org.freedesktop.systemd1.Scope", "ControlGroup", &e, &cg);
  if (r < 0)
    {
      ret = bus_error (err, r, &e, "read ControlGroup");
      goto out;
    }
  if (cg == NULL || cg[0] != '/')
    {
      free (cg);
      ret = ocirun_make_error (err, -EIO, "systemd cgroup driver: unit `%s` has no cgroup", unit);
      goto out;
    }
  *out = cg;

out:
  sd_bus_error_free (&e);
  sd_bus_message_unref (reply);
  return ret;
}

static pid_t
spawn_holder (ocirun_error_t *err)
{
  pid_t parent = getpid ();
  pid_t pid = fork ();
  if (pid < 0)
    return ocirun_make_error (err, errno, "systemd cgroup driver: fork");
  if (pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      if (getppid () != parent)
        _exit (0);
      for (;;)
        pause ();
    }
  return pid;
}

static void
kill_holder (struct ocirun_systemd_unit *u)
{
  int st;
  if (u == NULL || u->holder <= 0)
    return;
  kill (u->holder, SIGKILL);
  TEMP_FAILURE_RETRY_INT (waitpid (u->holder, &st, 0));
  u->holder = -1;
}

void
ocirun_cgroup_systemd_free (struct ocirun_systemd_unit *u)
{
  if (u == NULL)
    return;
  kill_holder (u);
  free (u->name);
  free (u->subcgroup);
  free (u);
}

static int
start_scope (sd_bus *bus, bool user, const char *slice, const char *unit, const char *id, pid_t pid,
             const struct ocirun_systemd_props *props, ocirun_error_t *err)
{
  sd_bus_error e = SD_BUS_ERROR_NULL;
  sd_bus_message *m = NULL, *reply = NULL;
  sd_bus_slot *slot = NULL;
  struct job_wait w = { 0 };
  cleanup_free char *desc = NULL;
  const char *job = NULL;
  int r, ret;

  /* Subscribed before the call: the job can finish before the reply. */
  r = sd_bus_match_signal (bus, &slot, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved", on_job_removed, &w);
  if (r < 0)
    {
      ret = bus_error (err, r, NULL, "subscribe to JobRemoved");
      goto out;
    }

  xasprintf (&desc, "ocirun container %s", id ? id : "");
  r = sd_bus_message_new_method_call (bus, &m, SD_DEST, SD_PATH, SD_MANAGER, "StartTransientUnit");
  if (r >= 0)
    r = sd_bus_message_append (m, "ss", unit, "replace");
  if (r >= 0)
    r = sd_bus_message_open_container (m, 'a', "(sv)");
  if (r >= 0)
    r = sd_bus_message_append (m, "(sv)(sv)(sv)(sv)(sv)", "Description", "s", desc, "Slice", "s", slice, "Delegate",
                               "b", 1, "DefaultDependencies", "b", 0, "PIDs", "au", 1, (uint32_t)pid);
  if (r >= 0)
    r = sd_bus_message_append (m, "(sv)(sv)(sv)(sv)", "MemoryAccounting", "b", 1, "CPUAccounting", "b", 1,
                               "TasksAccounting", "b", 1, "IOAccounting", "b", 1);
  if (r >= 0)
    r = append_props (m, props);
  if (r >= 0)
    r = sd_bus_message_close_container (m);
  if (r >= 0)
    r = sd_bus_message_append (m, "a(sa(sv))", 0);
  if (r < 0)
    {
      ret = bus_error (err, r, NULL, "build the StartTransientUnit message");
      goto out;
    }

  r = sd_bus_call (bus, m, 0, &e, &reply);
  if (r < 0)
    {
      if (unreachable_error (&e))
        ret = unreachable (err, user, &e);
      else if (sd_bus_error_has_name (&e, "org.freedesktop.systemd1.UnitExists"))
        ret = ocirun_make_error (err, -EEXIST, "systemd cgroup driver: unit `%s` already exists", unit);
      else
        {
          cleanup_free char *what = NULL;
          xasprintf (&what, "start unit `%s`", unit);
          ret = bus_error (err, r, &e, what);
        }
      goto out;
    }
  r = sd_bus_message_read (reply, "o", &job);
  if (r < 0)
    {
      ret = bus_error (err, r, NULL, "read the StartTransientUnit reply");
      goto out;
    }
  w.job = job;
  ret = wait_job (bus, &w, unit, "start unit", err);

out:
  free (w.result);
  sd_bus_slot_unref (slot);
  sd_bus_message_unref (m);
  sd_bus_message_unref (reply);
  sd_bus_error_free (&e);
  return ret;
}

static int
stop_unit (sd_bus *bus, bool user, const char *unit, ocirun_error_t *err)
{
  sd_bus_error e = SD_BUS_ERROR_NULL;
  sd_bus_message *reply = NULL;
  sd_bus_slot *slot = NULL;
  struct job_wait w = { 0 };
  const char *job = NULL;
  int r, ret = 0;

  r = sd_bus_match_signal (bus, &slot, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved", on_job_removed, &w);
  if (r < 0)
    {
      ret = bus_error (err, r, NULL, "subscribe to JobRemoved");
      goto out;
    }
  r = sd_bus_call_method (bus, SD_DEST, SD_PATH, SD_MANAGER, "StopUnit", &e, &reply, "ss", unit, "replace");
  if (r < 0)
    {
      /* Already gone: a scope is collected once its processes are. */
      if (!sd_bus_error_has_name (&e, "org.freedesktop.systemd1.NoSuchUnit"))
        {
          cleanup_free char *what = NULL;
          xasprintf (&what, "stop unit `%s`", unit);
          ret = unreachable_error (&e) ? unreachable (err, user, &e) : bus_error (err, r, &e, what);
        }
      goto out;
    }
  r = sd_bus_message_read (reply, "o", &job);
  if (r < 0)
    {
      ret = bus_error (err, r, NULL, "read the StopUnit reply");
      goto out;
    }
  w.job = job;
  ret = wait_job (bus, &w, unit, "stop unit", err);

out:
  sd_bus_error_free (&e);
  sd_bus_message_unref (reply);
  /* A unit that failed stays listed until reset; a missing one is fine. */
  sd_bus_call_method (bus, SD_DEST, SD_PATH, SD_MANAGER, "ResetFailedUnit", NULL, NULL, "s", unit);
  free (w.result);
  sd_bus_slot_unref (slot);
  return ret;
}

/* -------------------------------------------------------------- driver */

static char *
unit_from_path (const char *path)
{
  const char *slash = strrchr (path, '/');
  const char *name = slash ? slash + 1 : path;
  return has_suffix (name, ".scope") ? xstrdup (name) : NULL;
}

bool
ocirun_systemd_path_is_user (const char *path)
{
  cleanup_free char *copy = xstrdup (path ? path : "");
  char *save = NULL;

  for (char *c = strtok_r (copy, "/", &save); c; c = strtok_r (NULL, "/", &save))
    if (strncmp (c, "user@", 5) == 0 && has_suffix (c, ".service"))
      return true;
  return false;
}

/* runc's unit properties for the device rules a new cgroup gets (or those
 * `update` was given), appended to props. */
static int
add_device_props (const oci_resources *r, oci_device *const *ldevs, size_t nldevs, struct ocirun_logger *log,
                  struct ocirun_systemd_props *props, ocirun_error_t *err)
{
  cleanup_free struct ocirun_device_rule *rules = NULL;
  size_t n = 0;
  int ret;

  ret = ocirun_cgroup_device_rules (r, ldevs, nldevs, &rules, &n, err);
  if (ret < 0)
    return ret;
  return ocirun_systemd_device_props (rules, n, log, props, err);
}

int
ocirun_cgroup_systemd_create (const struct ocirun_cgroup_request *req, struct ocirun_cgroup **out, ocirun_error_t *err)
{
  cleanup_free char *slice = NULL, *unit = NULL, *slice_path = NULL, *cgpath = NULL;
  struct ocirun_systemd_props props = { 0 };
  struct ocirun_cgroup_layout layout = { 0 };
  struct ocirun_systemd_unit *u = NULL;
  struct ocirun_cgroup_request fsreq;
  struct ocirun_cgroup *cg = NULL;
  cleanup_bus sd_bus *bus = NULL;
  bool user = req->rootless;
  bool started = false;
  int ret;

  *out = NULL;
  ret = ocirun_systemd_parse_path (req->cgroups_path, req->id, user, &slice, &unit, err);
  if (ret < 0)
    return ret;
  ret = ocirun_systemd_expand_slice (slice, &slice_path, err);
  if (ret < 0)
    return ret;
  ret = ocirun_cgroup_layout_detect (&layout, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "cgroup");
  if (user && layout.mode != OCIRUN_CGROUP_V2)
    {
      ret = ocirun_make_error (err, -ENOTSUP,
                               "systemd cgroup driver: rootless containers need cgroup v2 (a systemd user manager "
                               "cannot delegate cgroup v1 controllers)");
      goto out;
    }
  ret = ocirun_systemd_resource_props (req->resources, layout.mode, &props, err);
  /* Rootless, the user manager could not install a device program, and the
   * user namespace already keeps device nodes out of reach. */
  if (ret == 0 && !user)
    ret = add_device_props (req->resources, req->linux_devices, req->linux_devices_len, req->log, &props, err);
  if (ret < 0)
    goto out;
  ret = bus_open (&bus, user, err);
  if (ret < 0)
    goto out;

  u = xmalloc0 (sizeof *u);
  u->name = xstrdup (unit);
  u->user = user;
  u->holder = spawn_holder (err);
  if (u->holder < 0)
    {
      ret = u->holder;
      goto out;
    }
  ret = start_scope (bus, user, slice, unit, req->id, u->holder, &props, err);
  if (ret < 0)
    goto out;
  started = true;
  ret = unit_cgroup (bus, unit, &cgpath, err);
  if (ret < 0)
    goto out;

  /* Then the cgroupfs code on the scope's directory: it opens it in every
   * hierarchy and writes every setting, including those systemd has no
   * property for, and the device rules (runc's systemd driver does the
   * same). Rootless, the user manager made the scope's files ours. */
  fsreq = *req;
  fsreq.systemd = false;
  fsreq.cgroups_path = cgpath;
  ret = ocirun_cgroup_create_in (&layout, NULL, &fsreq, &cg, err);
  if (ret < 0)
    goto out;
  if (cg == NULL)
    {
      ret = ocirun_make_error (err, -EIO, "systemd cgroup driver: no cgroup for unit `%s`", unit);
      goto out;
    }
  cg->systemd = steal_pointer (&u);
  ocirun_debug (req->log, "cgroup: systemd unit `%s` in `%s` (%s)%s", unit, slice, cgpath,
                user ? " of the user manager" : "");
  *out = cg;
  ret = 0;

out:
  if (ret < 0 && started)
    {
      cleanup_error ocirun_error_t e2 = NULL;
      if (stop_unit (bus, user, unit, &e2) < 0)
        ocirun_warning (req->log, "%s", e2->msg);
    }
  ocirun_cgroup_systemd_free (u);
  ocirun_systemd_props_clear (&props);
  ocirun_cgroup_layout_clear (&layout);
  return ret;
}

int
ocirun_cgroup_systemd_load (const char *path, struct ocirun_logger *log, struct ocirun_cgroup **out,
                            ocirun_error_t *err)
{
  struct ocirun_cgroup_layout layout = { 0 };
  cleanup_free char *unit = NULL;
  int ret;

  *out = NULL;
  if (path == NULL || path[0] != '/' || (unit = unit_from_path (path)) == NULL)
    return ocirun_make_error (err, -EINVAL, "systemd cgroup driver: `%s` is not the cgroup of a scope unit",
                              path ? path : "");
  ret = ocirun_cgroup_layout_detect (&layout, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "cgroup");
  ret = ocirun_cgroup_load_in (&layout, path, "cgroupfs", log, out, err);
  ocirun_cgroup_layout_clear (&layout);
  if (ret < 0)
    return ret;
  (*out)->systemd = xmalloc0 (sizeof (struct ocirun_systemd_unit));
  (*out)->systemd->name = steal_pointer (&unit);
  /* Where the scope lives says which manager owns it: the state keeps
   * only the path. */
  (*out)->systemd->user = ocirun_systemd_path_is_user (path);
  (*out)->rootless = (*out)->systemd->user;
  (*out)->systemd->holder = -1;
  return 0;
}

struct ocirun_systemd_unit *
ocirun_systemd_unit_for_sub (const struct ocirun_systemd_unit *u, const char *subcgroup)
{
  struct ocirun_systemd_unit *s = xmalloc0 (sizeof *s);

  s->name = xstrdup (u->name);
  s->user = u->user;
  s->holder = -1;
  if (subcgroup && *subcgroup && strcmp (subcgroup, "/") != 0)
    {
      if (*subcgroup == '/')
        s->subcgroup = xstrdup (subcgroup);
      else
        xasprintf (&s->subcgroup, "/%s", subcgroup);
    }
  return s;
}

int
ocirun_cgroup_systemd_stop (struct ocirun_cgroup *cg, ocirun_error_t *err)
{
  cleanup_bus sd_bus *bus = NULL;
  int ret;

  if (cg->systemd == NULL)
    return 0;
  kill_holder (cg->systemd);
  ret = bus_open (&bus, cg->systemd->user, err);
  if (ret < 0)
    return ret;
  return stop_unit (bus, cg->systemd->user, cg->systemd->name, err);
}

int
ocirun_cgroup_attach (struct ocirun_cgroup *cg, pid_t pid, ocirun_error_t *err)
{
  sd_bus_error e = SD_BUS_ERROR_NULL;
  cleanup_bus sd_bus *bus = NULL;
  int r, ret;

  /* Only a user manager's scope: the process is in a cgroup the caller
   * does not own (its login session, a system service), and the kernel
   * lets it move a task only below a common ancestor it owns. The user
   * manager asks the system manager to do it when it cannot either. */
  if (cg == NULL || cg->systemd == NULL || !cg->systemd->user)
    return 0;
  ret = bus_open (&bus, true, err);
  if (ret < 0)
    return ret;
  r = sd_bus_call_method (bus, SD_DEST, SD_PATH, SD_MANAGER, "AttachProcessesToUnit", &e, NULL, "ssau",
                          cg->systemd->name, cg->systemd->subcgroup ? cg->systemd->subcgroup : "", 1, (uint32_t)pid);
  if (r < 0)
    {
      cleanup_free char *what = NULL;
      xasprintf (&what, "move process %d into unit `%s`", (int)pid, cg->systemd->name);
      ret = unreachable_error (&e) ? unreachable (err, true, &e) : bus_error (err, r, &e, what);
    }
  sd_bus_error_free (&e);
  return ret;
}

int
ocirun_cgroup_systemd_update (struct ocirun_cgroup *cg, const oci_resources *resources,
                              oci_device *const *linux_devices, size_t linux_devices_len, ocirun_error_t *err)
{
  struct ocirun_systemd_props props = { 0 };
  sd_bus_error e = SD_BUS_ERROR_NULL;
  sd_bus_message *m = NULL;
  cleanup_bus sd_bus *bus = NULL;
  int r, ret;

  /* The unit's properties too, not only the files: systemd writes its own
   * values back on a daemon-reload. */
  if (cg->systemd == NULL || resources == NULL)
    return 0;
  ret = ocirun_systemd_resource_props (resources, cg->mode, &props, err);
  /* Device rules only when `update` has some (then with runc's defaults, as
   * the cgroupfs code writes them): the unit keeps those it was made with. */
  if (ret == 0 && resources->devices_len > 0 && !cg->systemd->user)
    ret = add_device_props (resources, linux_devices, linux_devices_len, cg->log, &props, err);
  if (ret < 0 || props.len == 0)
    {
      /* Before bus_open: libsystemd may not be loaded. */
      ocirun_systemd_props_clear (&props);
      return ret;
    }
  ret = bus_open (&bus, cg->systemd->user, err);
  if (ret < 0)
    goto out;
  r = sd_bus_message_new_method_call (bus, &m, SD_DEST, SD_PATH, SD_MANAGER, "SetUnitProperties");
  if (r >= 0)
    r = sd_bus_message_append (m, "sb", cg->systemd->name, 1);
  if (r >= 0)
    r = sd_bus_message_open_container (m, 'a', "(sv)");
  if (r >= 0)
    r = append_props (m, &props);
  if (r >= 0)
    r = sd_bus_message_close_container (m);
  if (r < 0)
    {
      ret = bus_error (err, r, NULL, "build the SetUnitProperties message");
      goto out;
    }
  r = sd_bus_call (bus, m, 0, &e, NULL);
  if (r < 0)
    {
      cleanup_free char *what = NULL;
      xasprintf (&what, "set properties of unit `%s`", cg->systemd->name);
      ret = unreachable_error (&e) ? unreachable (err, cg->systemd->user, &e) : bus_error (err, r, &e, what);
    }

out:
  sd_bus_error_free (&e);
  sd_bus_message_unref (m);
  ocirun_systemd_props_clear (&props);
  return ret;
}
