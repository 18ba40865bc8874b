#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "cgroup-internal.h"
#include "devices-ebpf.h"
#include "../util.h"

/* linux.resources onto cgroupfs knobs, with runc's conversions and its
 * choices about what to ignore. A setting the host cannot take is an error
 * that names the setting; runc's deliberate no-ops are warnings. */

#define R "linux.resources."

static int __attribute__ ((format (printf, 6, 7)))
writef (struct ocirun_cgroup_dir *d, const char *setting, const char *file, const char *hint, ocirun_error_t *err,
        const char *fmt, ...)
{
  cleanup_free char *value = NULL;
  va_list ap;
  int r;

  va_start (ap, fmt);
  r = vasprintf (&value, fmt, ap);
  va_end (ap);
  if (r < 0)
    return ocirun_make_error (err, ENOMEM, "%s: format value", setting);
  return ocirun_cgroup_write (d, setting, file, value, hint, err);
}

/* The directory for a v1 controller, or an error naming the setting. */
static struct ocirun_cgroup_dir *
need (struct ocirun_cgroup *cg, const char *controller, const char *setting, int *ret, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d = ocirun_cgroup_find (cg, controller);
  const char *denied;
  if (d == NULL && (denied = ocirun_cgroup_denied (cg, controller)) != NULL)
    *ret = ocirun_make_error (err, -EPERM,
                              "%s: cannot set a %s limit: this rootless container could not create its cgroup in "
                              "the `%s` hierarchy (no permission: delegate it to the uid, or drop the limit)",
                              setting, controller, *denied ? denied : "cgroup2");
  else if (d == NULL)
    *ret = ocirun_make_error (err, ENOTSUP, "%s: the %s controller is not mounted", setting, controller);
  else if (d->fd < 0)
    *ret = ocirun_make_error (err, ENOENT, "%s: the cgroup `%s` does not exist", setting, d->abs);
  return d && d->fd >= 0 ? d : NULL;
}

static bool
is_v2 (struct ocirun_cgroup *cg)
{
  return cg->mode == OCIRUN_CGROUP_V2;
}

/* The hint for a knob missing on v2: its controller is not enabled. */
static const char *
v2_hint (struct ocirun_cgroup *cg, const char *controller)
{
  (void)controller;
  return is_v2 (cg) ? "is the controller enabled in the parent's cgroup.subtree_control?" : NULL;
}

/* ----------------------------------------------------------------- memory */

static const char swap_hint[] = "swap accounting is disabled; swapaccount=1 on the kernel command line enables it";

static int
memory_v1 (struct ocirun_cgroup *cg, const oci_memory *m, ocirun_error_t *err)
{
  int64_t limit = m->has_limit ? m->limit : 0;
  int64_t swap = m->has_swap ? m->swap : 0;
  struct ocirun_cgroup_dir *d;
  int ret = 0;

  if (limit == 0 && swap == 0 && !(m->has_reservation && m->reservation)
      && !(m->has_disable_oom_killer && m->disable_oom_killer) && !m->has_swappiness)
    return 0;
  d = need (cg, "memory", R "memory", &ret, err);
  if (d == NULL)
    return ret;

  /* Unlimited memory without a word on swap means unlimited swap too. */
  if (limit == -1 && swap == 0 && ocirun_cgroup_has_file (d, "memory.memsw.limit_in_bytes"))
    swap = -1;

  if (limit != 0 && swap != 0)
    {
      uint64_t cur;
      ret = ocirun_cgroup_read_u64 (d, "memory.limit_in_bytes", &cur, err);
      if (ret < 0)
        return ocirun_error_prefix (err, R "memory.limit");
      /* memsw may never go below the memory limit: when the new swap
       * limit is above the current memory limit it must be raised first,
       * otherwise lowered last. */
      if (swap == -1 || cur < (uint64_t)swap)
        {
          ret = writef (d, R "memory.swap", "memory.memsw.limit_in_bytes", swap_hint, err, "%" PRId64, swap);
          if (ret < 0)
            return ret;
          swap = 0;
        }
    }
  if (limit != 0)
    {
      ret = writef (d, R "memory.limit", "memory.limit_in_bytes", NULL, err, "%" PRId64, limit);
      if (ret == -EBUSY)
        {
          uint64_t usage = 0, peak = 0;
          ocirun_cgroup_read_u64 (d, "memory.usage_in_bytes", &usage, NULL);
          ocirun_cgroup_read_u64 (d, "memory.max_usage_in_bytes", &peak, NULL);
          return ocirun_make_error (err, EBUSY,
                                    R "memory.limit: unable to set memory limit to %" PRId64 " (current usage: %" PRIu64
                                      ", peak usage: %" PRIu64 ")",
                                    limit, usage, peak);
        }
      if (ret < 0)
        return ret;
    }
  if (swap != 0)
    {
      ret = writef (d, R "memory.swap", "memory.memsw.limit_in_bytes", swap_hint, err, "%" PRId64, swap);
      if (ret < 0)
        return ret;
    }
  if (m->has_reservation && m->reservation != 0)
    {
      ret = writef (d, R "memory.reservation", "memory.soft_limit_in_bytes", NULL, err, "%" PRId64, m->reservation);
      if (ret < 0)
        return ret;
    }
  if (m->has_disable_oom_killer && m->disable_oom_killer)
    {
      ret = ocirun_cgroup_write (d, R "memory.disableOOMKiller", "memory.oom_control", "1", NULL, err);
      if (ret < 0)
        return ret;
    }
  /* (uint64)-1 is the legacy "leave it alone". */
  if (m->has_swappiness && m->swappiness != UINT64_MAX)
    {
      if (m->swappiness > 100)
        return ocirun_make_error (err, EINVAL, R "memory.swappiness: invalid value %" PRIu64 ", valid range is 0-100",
                                  m->swappiness);
      ret = writef (d, R "memory.swappiness", "memory.swappiness", NULL, err, "%" PRIu64, m->swappiness);
      if (ret < 0)
        return ret;
    }
  return 0;
}

/* cgroup v1 -1 meant "no limit", v2 spells it "max". */
static void
v2_value (char *buf, size_t size, int64_t v)
{
  if (v == -1)
    snprintf (buf, size, "max");
  else
    snprintf (buf, size, "%" PRId64, v);
}

static int
memory_v2 (struct ocirun_cgroup *cg, const oci_memory *m, ocirun_error_t *err)
{
  int64_t limit = m->has_limit ? m->limit : 0;
  int64_t swap = m->has_swap ? m->swap : 0;
  int64_t reservation = m->has_reservation ? m->reservation : 0;
  struct ocirun_cgroup_dir *d;
  int64_t swap2;
  char buf[32];
  int ret = 0;

  if (m->has_swappiness && m->swappiness != UINT64_MAX)
    ocirun_warning (cg->log, R "memory.swappiness is not supported on cgroup v2: ignored");
  if (m->has_disable_oom_killer && m->disable_oom_killer)
    ocirun_warning (cg->log, R "memory.disableOOMKiller is not supported on cgroup v2: ignored");
  if (limit == 0 && swap == 0 && reservation == 0)
    return 0;
  d = need (cg, "memory", R "memory", &ret, err);
  if (d == NULL)
    return ret;

  if (m->has_check_before_update && m->check_before_update && limit > 0)
    {
      uint64_t usage;
      if (ocirun_cgroup_read_u64 (d, "memory.current", &usage, NULL) == 0 && usage >= (uint64_t)limit)
        return ocirun_make_error (
            err, EBUSY, R "memory.limit: rejecting memory limit %" PRId64 ": less than current usage %" PRIu64, limit,
            usage);
    }

  /* v1's memsw is memory plus swap, v2's swap.max is swap alone. */
  if (limit == -1 && swap == 0)
    swap2 = -1;
  else if (swap == -1 || swap == 0)
    swap2 = swap;
  else if (limit == 0 || limit == -1)
    return ocirun_make_error (err, EINVAL, R "memory.swap: unable to set swap limit without memory limit");
  else if (limit < 0)
    return ocirun_make_error (err, EINVAL, R "memory.limit: invalid memory value %" PRId64, limit);
  else if (swap < limit)
    return ocirun_make_error (err, EINVAL,
                              R "memory.swap: memory+swap limit (%" PRId64 ") should be >= memory limit (%" PRId64 ")",
                              swap, limit);
  else
    swap2 = swap - limit;

  /* swap2 == 0 from an explicit swap equal to the limit disables swap;
   * from "not set" it writes nothing. */
  if (swap2 != 0 || swap > 0)
    {
      v2_value (buf, sizeof buf, swap2);
      ret = ocirun_cgroup_write (d, R "memory.swap", "memory.swap.max", buf, swap_hint, err);
      if (ret < 0)
        return ret;
    }
  if (limit != 0)
    {
      v2_value (buf, sizeof buf, limit);
      ret = ocirun_cgroup_write (d, R "memory.limit", "memory.max", buf, v2_hint (cg, "memory"), err);
      if (ret < 0)
        return ret;
    }
  if (reservation != 0)
    {
      v2_value (buf, sizeof buf, reservation);
      ret = ocirun_cgroup_write (d, R "memory.reservation", "memory.low", buf, v2_hint (cg, "memory"), err);
      if (ret < 0)
        return ret;
    }
  return 0;
}

static int
memory (struct ocirun_cgroup *cg, const oci_memory *m, ocirun_error_t *err)
{
  if (m == NULL)
    return 0;
  /* runc 1.1 dropped kernel memory limits (the kernel deprecated them). */
  if ((m->has_kernel && m->kernel) || (m->has_kernel_tcp && m->kernel_tcp))
    ocirun_warning (cg->log, "Kernel memory settings are ignored and will be removed");
  return is_v2 (cg) ? memory_v2 (cg, m, err) : memory_v1 (cg, m, err);
}

/* -------------------------------------------------------------------- cpu */

/* runc's mapping of cpu.shares [2, 262144] onto cpu.weight [1, 10000]. */
static uint64_t
shares_to_weight (uint64_t shares)
{
  if (shares < 2)
    shares = 2;
  if (shares > 262144)
    shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

static int
cpuset (struct ocirun_cgroup *cg, const oci_cpu *c, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d;
  int ret = 0;

  if ((c->cpus == NULL || *c->cpus == '\0') && (c->mems == NULL || *c->mems == '\0'))
    return 0;
  d = need (cg, "cpuset", R "cpu.cpus", &ret, err);
  if (d == NULL)
    return ret;
  if (c->cpus && *c->cpus)
    {
      ret = ocirun_cgroup_write (d, R "cpu.cpus", "cpuset.cpus", c->cpus, v2_hint (cg, "cpuset"), err);
      if (ret < 0)
        return ret;
    }
  if (c->mems && *c->mems)
    {
      ret = ocirun_cgroup_write (d, R "cpu.mems", "cpuset.mems", c->mems, v2_hint (cg, "cpuset"), err);
      if (ret < 0)
        return ret;
    }
  return 0;
}

static const char rt_hint[] = "the kernel has no real-time group scheduling (CONFIG_RT_GROUP_SCHED)";

static int
cpu_v1 (struct ocirun_cgroup *cg, const oci_cpu *c, ocirun_error_t *err)
{
  uint64_t shares = c->has_shares ? c->shares : 0;
  uint64_t period = c->has_period ? c->period : 0;
  int64_t quota = c->has_quota ? c->quota : 0;
  struct ocirun_cgroup_dir *d;
  bool period_pending = false;
  int ret = 0;

  if (!shares && !period && !quota && !c->has_burst && !(c->has_realtime_period && c->realtime_period)
      && !(c->has_realtime_runtime && c->realtime_runtime) && !c->has_idle)
    return 0;
  d = need (cg, "cpu", R "cpu", &ret, err);
  if (d == NULL)
    return ret;

  if (shares)
    {
      uint64_t got;
      ret = writef (d, R "cpu.shares", "cpu.shares", NULL, err, "%" PRIu64, shares);
      if (ret < 0)
        return ret;
      /* The kernel clamps silently; say so instead. */
      ret = ocirun_cgroup_read_u64 (d, "cpu.shares", &got, err);
      if (ret < 0)
        return ocirun_error_prefix (err, R "cpu.shares");
      if (shares > got)
        return ocirun_make_error (err, EINVAL, R "cpu.shares: the maximum allowed cpu-shares is %" PRIu64, got);
      if (shares < got)
        return ocirun_make_error (err, EINVAL, R "cpu.shares: the minimum allowed cpu-shares is %" PRIu64, got);
    }
  if (period)
    {
      ret = writef (d, R "cpu.period", "cpu.cfs_period_us", NULL, err, "%" PRIu64, period);
      /* A shorter period can exceed the parent's quota with the old quota
       * (EINVAL): retry once the quota is in. */
      if (ret == -EINVAL)
        {
          ocirun_error_free (err);
          period_pending = true;
        }
      else if (ret < 0)
        return ret;
    }
  if (quota)
    {
      ret = writef (d, R "cpu.quota", "cpu.cfs_quota_us", NULL, err, "%" PRId64, quota);
      if (ret < 0)
        return ret;
    }
  if (period_pending)
    {
      ret = writef (d, R "cpu.period", "cpu.cfs_period_us", NULL, err, "%" PRIu64, period);
      if (ret < 0)
        return ret;
    }
  if (c->has_burst)
    {
      ret = writef (d, R "cpu.burst", "cpu.cfs_burst_us", NULL, err, "%" PRIu64, c->burst);
      if (ret < 0)
        return ret;
    }
  if (c->has_realtime_period && c->realtime_period)
    {
      ret = writef (d, R "cpu.realtimePeriod", "cpu.rt_period_us", rt_hint, err, "%" PRIu64, c->realtime_period);
      if (ret < 0)
        return ret;
    }
  if (c->has_realtime_runtime && c->realtime_runtime)
    {
      ret = writef (d, R "cpu.realtimeRuntime", "cpu.rt_runtime_us", rt_hint, err, "%" PRId64, c->realtime_runtime);
      if (ret < 0)
        return ret;
    }
  if (c->has_idle)
    {
      ret = writef (d, R "cpu.idle", "cpu.idle", NULL, err, "%" PRId64, c->idle);
      if (ret < 0)
        return ret;
    }
  return 0;
}

static int
cpu_v2 (struct ocirun_cgroup *cg, const oci_cpu *c, ocirun_error_t *err)
{
  uint64_t shares = c->has_shares ? c->shares : 0;
  uint64_t period = c->has_period ? c->period : 0;
  int64_t quota = c->has_quota ? c->quota : 0;
  const char *hint = v2_hint (cg, "cpu");
  struct ocirun_cgroup_dir *d;
  int ret = 0;

  if ((c->has_realtime_period && c->realtime_period) || (c->has_realtime_runtime && c->realtime_runtime))
    return ocirun_make_error (err, ENOTSUP, R "cpu.realtimePeriod/realtimeRuntime: not supported on cgroup v2");
  if (!shares && !period && !quota && !c->has_burst && !c->has_idle)
    return 0;
  d = need (cg, "cpu", R "cpu", &ret, err);
  if (d == NULL)
    return ret;

  if (shares)
    {
      ret = writef (d, R "cpu.shares", "cpu.weight", hint, err, "%" PRIu64, shares_to_weight (shares));
      if (ret < 0)
        return ret;
    }
  if (quota || period)
    {
      char q[32];
      if (quota > 0)
        snprintf (q, sizeof q, "%" PRId64, quota);
      else if (quota < 0)
        snprintf (q, sizeof q, "max");
      else
        {
          /* Only the period changes (`update --cpu-period`): keep the
           * quota in force. */
          cleanup_free char *cur = NULL;
          snprintf (q, sizeof q, "max");
          if (ocirun_cgroup_read (d, "cpu.max", &cur, NULL) == 0 && strcspn (cur, " \n") < sizeof q)
            snprintf (q, sizeof q, "%.*s", (int)strcspn (cur, " \n"), cur);
        }
      /* Without a period, the kernel keeps the one in force. */
      if (period)
        ret = writef (d, R "cpu.quota", "cpu.max", hint, err, "%s %" PRIu64, q, period);
      else
        ret = ocirun_cgroup_write (d, R "cpu.quota", "cpu.max", q, hint, err);
      if (ret < 0)
        return ret;
    }
  if (c->has_burst)
    {
      ret = writef (d, R "cpu.burst", "cpu.max.burst", hint, err, "%" PRIu64, c->burst);
      if (ret < 0)
        return ret;
    }
  if (c->has_idle)
    {
      ret = writef (d, R "cpu.idle", "cpu.idle", hint, err, "%" PRId64, c->idle);
      if (ret < 0)
        return ret;
    }
  return 0;
}

/* ------------------------------------------------------------------- pids */

static int
pids (struct ocirun_cgroup *cg, const oci_pids *p, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d;
  int ret = 0;

  /* 0 is "not set" for runc; a negative limit lifts it. */
  if (p == NULL || !p->has_limit || p->limit == 0)
    return 0;
  d = need (cg, "pids", R "pids.limit", &ret, err);
  if (d == NULL)
    return ret;
  if (p->limit < 0)
    return ocirun_cgroup_write (d, R "pids.limit", "pids.max", "max", v2_hint (cg, "pids"), err);
  return writef (d, R "pids.limit", "pids.max", v2_hint (cg, "pids"), err, "%" PRId64, p->limit);
}

/* ---------------------------------------------------------------- blockIO */

static int
throttles_v1 (struct ocirun_cgroup_dir *d, oci_throttle_device **t, size_t n, const char *setting, const char *file,
              ocirun_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    {
      int ret = writef (d, setting, file, NULL, err, "%" PRId64 ":%" PRId64 " %" PRIu64, t[i]->major, t[i]->minor,
                        t[i]->rate);
      if (ret < 0)
        return ret;
    }
  return 0;
}

static int
throttles_v2 (struct ocirun_cgroup_dir *d, oci_throttle_device **t, size_t n, const char *setting, const char *key,
              const char *hint, ocirun_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    {
      int ret = writef (d, setting, "io.max", hint, err, "%" PRId64 ":%" PRId64 " %s=%" PRIu64, t[i]->major,
                        t[i]->minor, key, t[i]->rate);
      if (ret < 0)
        return ret;
    }
  return 0;
}

static bool
block_io_set (const oci_block_io *b)
{
  return (b->has_weight && b->weight) || (b->has_leaf_weight && b->leaf_weight) || b->weight_device_len
         || b->throttle_read_bps_device_len || b->throttle_write_bps_device_len || b->throttle_read_iops_device_len
         || b->throttle_write_iops_device_len;
}

static int
block_io_v1 (struct ocirun_cgroup *cg, const oci_block_io *b, ocirun_error_t *err)
{
  const char *weight_file = "blkio.weight", *weight_device_file = "blkio.weight_device";
  struct ocirun_cgroup_dir *d;
  int ret = 0;

  d = need (cg, "blkio", R "blockIO", &ret, err);
  if (d == NULL)
    return ret;
  /* With the BFQ scheduler the proportional weights live under blkio.bfq. */
  if (!ocirun_cgroup_has_file (d, weight_file) && ocirun_cgroup_has_file (d, "blkio.bfq.weight"))
    {
      weight_file = "blkio.bfq.weight";
      weight_device_file = "blkio.bfq.weight_device";
    }
  if (b->has_weight && b->weight)
    {
      ret = writef (d, R "blockIO.weight", weight_file, "no proportional-weight I/O scheduler (CFQ or BFQ)", err, "%u",
                    (unsigned)b->weight);
      if (ret < 0)
        return ret;
    }
  if (b->has_leaf_weight && b->leaf_weight)
    {
      ret = writef (d, R "blockIO.leafWeight", "blkio.leaf_weight", "only the CFQ scheduler has leaf weights", err,
                    "%u", (unsigned)b->leaf_weight);
      if (ret < 0)
        return ret;
    }
  for (size_t i = 0; i < b->weight_device_len; i++)
    {
      const oci_weight_device *w = b->weight_device[i];
      if (w->has_weight && w->weight)
        {
          ret = writef (d, R "blockIO.weightDevice", weight_device_file, NULL, err, "%" PRId64 ":%" PRId64 " %u",
                        w->major, w->minor, (unsigned)w->weight);
          if (ret < 0)
            return ret;
        }
      if (w->has_leaf_weight && w->leaf_weight)
        {
          ret = writef (d, R "blockIO.weightDevice.leafWeight", "blkio.leaf_weight_device",
                        "only the CFQ scheduler has leaf weights", err, "%" PRId64 ":%" PRId64 " %u", w->major,
                        w->minor, (unsigned)w->leaf_weight);
          if (ret < 0)
            return ret;
        }
    }
  ret = throttles_v1 (d, b->throttle_read_bps_device, b->throttle_read_bps_device_len,
                      R "blockIO.throttleReadBpsDevice", "blkio.throttle.read_bps_device", err);
  if (ret == 0)
    ret = throttles_v1 (d, b->throttle_write_bps_device, b->throttle_write_bps_device_len,
                        R "blockIO.throttleWriteBpsDevice", "blkio.throttle.write_bps_device", err);
  if (ret == 0)
    ret = throttles_v1 (d, b->throttle_read_iops_device, b->throttle_read_iops_device_len,
                        R "blockIO.throttleReadIOPSDevice", "blkio.throttle.read_iops_device", err);
  if (ret == 0)
    ret = throttles_v1 (d, b->throttle_write_iops_device, b->throttle_write_iops_device_len,
                        R "blockIO.throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", err);
  return ret;
}

/* runc's mapping of blkio.weight [10, 1000] onto io.weight [1, 10000]. */
static unsigned
blkio_to_io_weight (unsigned w)
{
  if (w < 10)
    w = 10;
  if (w > 1000)
    w = 1000;
  return 1 + (w - 10) * 9999 / 990;
}

static int
block_io_v2 (struct ocirun_cgroup *cg, const oci_block_io *b, ocirun_error_t *err)
{
  const char *hint = v2_hint (cg, "io");
  struct ocirun_cgroup_dir *d;
  bool bfq;
  int ret = 0;

  d = need (cg, "io", R "blockIO", &ret, err);
  if (d == NULL)
    return ret;
  /* io.bfq.weight takes blkio's own scale; io.weight needs converting. */
  bfq = ocirun_cgroup_has_file (d, "io.bfq.weight");
  if ((b->has_leaf_weight && b->leaf_weight))
    ocirun_warning (cg->log, R "blockIO.leafWeight is not supported on cgroup v2: ignored");
  if (b->has_weight && b->weight)
    {
      if (bfq)
        ret = writef (d, R "blockIO.weight", "io.bfq.weight", hint, err, "%u", (unsigned)b->weight);
      else
        ret = writef (d, R "blockIO.weight", "io.weight", hint, err, "%u", blkio_to_io_weight (b->weight));
      if (ret < 0)
        return ret;
    }
  for (size_t i = 0; i < b->weight_device_len; i++)
    {
      const oci_weight_device *w = b->weight_device[i];
      if (w->has_leaf_weight && w->leaf_weight)
        ocirun_warning (cg->log, R "blockIO.weightDevice.leafWeight is not supported on cgroup v2: ignored");
      if (!(w->has_weight && w->weight))
        continue;
      if (bfq)
        ret = writef (d, R "blockIO.weightDevice", "io.bfq.weight", hint, err, "%" PRId64 ":%" PRId64 " %u", w->major,
                      w->minor, (unsigned)w->weight);
      else
        ret = writef (d, R "blockIO.weightDevice", "io.weight", hint, err, "%" PRId64 ":%" PRId64 " %u", w->major,
                      w->minor, blkio_to_io_weight (w->weight));
      if (ret < 0)
        return ret;
    }
  ret = throttles_v2 (d, b->throttle_read_bps_device, b->throttle_read_bps_device_len,
                      R "blockIO.throttleReadBpsDevice", "rbps", hint, err);
  if (ret == 0)
    ret = throttles_v2 (d, b->throttle_write_bps_device, b->throttle_write_bps_device_len,
                        R "blockIO.throttleWriteBpsDevice", "wbps", hint, err);
  if (ret == 0)
    ret = throttles_v2 (d, b->throttle_read_iops_device, b->throttle_read_iops_device_len,
                        R "blockIO.throttleReadIOPSDevice", "riops", hint, err);
  if (ret == 0)
    ret = throttles_v2 (d, b->throttle_write_iops_device, b->throttle_write_iops_device_len,
                        R "blockIO.throttleWriteIOPSDevice", "wiops", hint, err);
  return ret;
}

static int
block_io (struct ocirun_cgroup *cg, const oci_block_io *b, ocirun_error_t *err)
{
  if (b == NULL || !block_io_set (b))
    return 0;
  return is_v2 (cg) ? block_io_v2 (cg, b, err) : block_io_v1 (cg, b, err);
}

/* -------------------------------------------------------------- hugetlb */

static int
hugepages (struct ocirun_cgroup *cg, oci_hugepage_limit **l, size_t n, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d;
  int ret = 0;

  if (n == 0)
    return 0;
  d = need (cg, "hugetlb", R "hugepageLimits", &ret, err);
  if (d == NULL)
    return ret;
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *file = NULL;
      cleanup_free char *rsvd = NULL;
      const char *ps = l[i]->page_size;

      if (ps == NULL || *ps == '\0' || strchr (ps, '/') || ps[0] == '.')
        return ocirun_make_error (err, EINVAL, R "hugepageLimits[%zu].pageSize: invalid page size `%s`", i,
                                  ps ? ps : "");
      xasprintf (&file, is_v2 (cg) ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes", ps);
      ret = writef (d, R "hugepageLimits", file, "no such huge page size, or the controller is not enabled", err,
                    "%" PRIu64, l[i]->limit);
      if (ret < 0)
        return ret;
      /* Reservations (kernel 5.7+) get the same limit, so that a mapping
       * cannot reserve what it may not fault in. */
      xasprintf (&rsvd, is_v2 (cg) ? "hugetlb.%s.rsvd.max" : "hugetlb.%s.rsvd.limit_in_bytes", ps);
      if (ocirun_cgroup_has_file (d, rsvd))
        {
          ret = writef (d, R "hugepageLimits", rsvd, NULL, err, "%" PRIu64, l[i]->limit);
          if (ret < 0)
            return ret;
        }
    }
  return 0;
}

/* --------------------------------------------------------------- network */

static int
network (struct ocirun_cgroup *cg, const oci_network *n, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d;
  int ret = 0;

  if (n == NULL || ((!n->has_class_id || n->class_id == 0) && n->priorities_len == 0))
    return 0;
  if (is_v2 (cg))
    return ocirun_make_error (err, ENOTSUP, R "network: cgroup v2 has no net_cls/net_prio controllers");
  if (n->has_class_id && n->class_id)
    {
      d = need (cg, "net_cls", R "network.classID", &ret, err);
      if (d == NULL)
        return ret;
      ret = writef (d, R "network.classID", "net_cls.classid", NULL, err, "%u", (unsigned)n->class_id);
      if (ret < 0)
        return ret;
    }
  if (n->priorities_len)
    {
      d = need (cg, "net_prio", R "network.priorities", &ret, err);
      if (d == NULL)
        return ret;
      for (size_t i = 0; i < n->priorities_len; i++)
        {
          ret = writef (d, R "network.priorities", "net_prio.ifpriomap", NULL, err, "%s %u", n->priorities[i]->name,
                        (unsigned)n->priorities[i]->priority);
          if (ret < 0)
            return ret;
        }
    }
  return 0;
}

/* ------------------------------------------------------------------ rdma */

static int
rdma (struct ocirun_cgroup *cg, const oci_map_rdma *m, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d;
  int ret = 0;

  if (m == NULL || m->len == 0)
    return 0;
  d = need (cg, "rdma", R "rdma", &ret, err);
  if (d == NULL)
    return ret;
  for (size_t i = 0; i < m->len; i++)
    {
      const oci_rdma *r = m->values[i];
      char handles[48] = "", objects[48] = "";
      if (r == NULL || (!r->has_hca_handles && !r->has_hca_objects))
        continue;
      if (r->has_hca_handles)
        snprintf (handles, sizeof handles, " hca_handle=%u", (unsigned)r->hca_handles);
      if (r->has_hca_objects)
        snprintf (objects, sizeof objects, " hca_object=%u", (unsigned)r->hca_objects);
      ret = writef (d, R "rdma", "rdma.max", v2_hint (cg, "rdma"), err, "%s%s%s", m->keys[i], handles, objects);
      if (ret < 0)
        return ret;
    }
  return 0;
}

/* --------------------------------------------------------------- unified */

static bool
in_word_list (const char *list, const char *word, size_t wlen)
{
  const char *p = list + strspn (list, " \n");
  while (*p)
    {
      size_t n = strcspn (p, " \n");
      if (n == wlen && strncmp (p, word, n) == 0)
        return true;
      p += n;
      p += strspn (p, " \n");
    }
  return false;
}

static int
unified (struct ocirun_cgroup *cg, const oci_map_string *m, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d;

  if (m == NULL || m->len == 0)
    return 0;
  if (!is_v2 (cg))
    return ocirun_make_error (err, ENOTSUP, R "unified: cannot be used on cgroup v1 (this host is %s)",
                              cg->mode == OCIRUN_CGROUP_HYBRID ? "hybrid" : "v1");
  d = ocirun_cgroup_unified (cg);
  if (d == NULL || d->fd < 0)
    return ocirun_make_error (err, ENOENT, R "unified: no cgroup");
  for (size_t i = 0; i < m->len; i++)
    {
      const char *k = m->keys[i];
      cleanup_free char *setting = NULL;
      const char *dot;
      int ret;

      xasprintf (&setting, R "unified.%s", k);
      if (*k == '\0' || strchr (k, '/') || strcmp (k, ".") == 0 || strcmp (k, "..") == 0)
        return ocirun_make_error (err, EINVAL, "%s: must be a file name (no slashes)", setting);
      ret = ocirun_cgroup_write (d, setting, k, m->values[i] ? m->values[i] : "", NULL, err);
      if (ret == -ENOENT || ret == -EPERM || ret == -EACCES)
        {
          /* Most likely the controller is not there: say that. */
          cleanup_free char *avail = NULL;
          dot = strchr (k, '.');
          if (dot == NULL)
            return ocirun_make_error (err, EINVAL, "%s: must be in the form CONTROLLER.PARAMETER", setting);
          if (strncmp (k, "cgroup.", 7) != 0 && ocirun_cgroup_read (d, "cgroup.controllers", &avail, NULL) == 0
              && !in_word_list (avail, k, dot - k))
            return ocirun_make_error (err, ENOTSUP, "%s: can't be set: controller `%.*s` not available", setting,
                                      (int)(dot - k), k);
        }
      if (ret < 0)
        return ret;
    }
  return 0;
}

/* --------------------------------------------------------------- devices */

/* ocirun_device_rule, shared with the v2 eBPF program. */
#define rule ocirun_device_rule

/* runc appends these to every container's rules; users cannot opt out. */
static const struct
{
  struct rule r;
  const char *path; /* a linux.devices entry at this path replaces the rule */
} default_rules[] = {
  { { true, 'c', -1, -1, "m" }, NULL },        { { true, 'b', -1, -1, "m" }, NULL },
  { { true, 'c', 1, 3, "rwm" }, "/dev/null" }, { { true, 'c', 1, 8, "rwm" }, "/dev/random" },
  { { true, 'c', 1, 7, "rwm" }, "/dev/full" }, { { true, 'c', 5, 0, "rwm" }, "/dev/tty" },
  { { true, 'c', 1, 5, "rwm" }, "/dev/zero" }, { { true, 'c', 1, 9, "rwm" }, "/dev/urandom" },
  { { true, 'c', 136, -1, "rwm" }, NULL },     { { true, 'c', 5, 2, "rwm" }, NULL },
  { { true, 'c', 10, 200, "rwm" }, NULL },
};

static int
collect_rules (const oci_resources *r, bool with_defaults, oci_device *const *ldevs, size_t nldevs, struct rule **out,
               size_t *len, ocirun_error_t *err)
{
  size_t n = (r ? r->devices_len : 0) + (with_defaults ? sizeof default_rules / sizeof default_rules[0] : 0);
  struct rule *rules = xmalloc0 ((n ? n : 1) * sizeof *rules);
  size_t k = 0;

  for (size_t i = 0; r && i < r->devices_len; i++)
    {
      const oci_device_cgroup *dc = r->devices[i];
      const char *t = dc->type && *dc->type ? dc->type : "a";
      if (strlen (t) != 1 || strchr ("abc", t[0]) == NULL)
        {
          free (rules);
          return ocirun_make_error (err, EINVAL, R "devices[%zu].type: invalid cgroup device type `%s`", i, t);
        }
      if (dc->access == NULL || *dc->access == '\0' || strspn (dc->access, "rwm") != strlen (dc->access))
        {
          free (rules);
          return ocirun_make_error (err, EINVAL, R "devices[%zu].access: `%s` must be a non-empty mix of r, w, m", i,
                                    dc->access ? dc->access : "");
        }
      rules[k].allow = dc->allow;
      rules[k].type = t[0];
      rules[k].major = dc->has_major && dc->major >= 0 ? dc->major : -1;
      rules[k].minor = dc->has_minor && dc->minor >= 0 ? dc->minor : -1;
      rules[k].access = dc->access;
      k++;
    }
  for (size_t i = 0; with_defaults && i < sizeof default_rules / sizeof default_rules[0]; i++)
    {
      bool replaced = false;
      for (size_t j = 0; default_rules[i].path && j < nldevs; j++)
        if (ldevs[j] && ldevs[j]->path && strcmp (ldevs[j]->path, default_rules[i].path) == 0)
          replaced = true;
      if (!replaced)
        rules[k++] = default_rules[i].r;
    }
  *out = rules;
  *len = k;
  return 0;
}

int
ocirun_cgroup_device_rules (const oci_resources *r, oci_device *const *linux_devices, size_t linux_devices_len,
                            struct rule **out, size_t *len, ocirun_error_t *err)
{
  return collect_rules (r, true, linux_devices, linux_devices_len, out, len, err);
}

static int
devices (struct ocirun_cgroup *cg, const oci_resources *r, bool creating, oci_device *const *ldevs, size_t nldevs,
         ocirun_error_t *err)
{
  cleanup_free struct rule *rules = NULL;
  struct ocirun_cgroup_dir *d;
  size_t n = 0;
  int ret = 0;

  /* Creation always sets the device rules (runc's defaults at least);
   * `update` only when it was given some. */
  if (!creating && (r == NULL || r->devices_len == 0))
    return 0;
  ret = collect_rules (r, true, ldevs, nldevs, &rules, &n, err);
  if (ret < 0)
    return ret;

  if (is_v2 (cg))
    {
      d = ocirun_cgroup_unified (cg);
      if (d == NULL || d->fd < 0)
        ret = ocirun_make_error (err, ENOENT, R "devices: no cgroup");
      else
        ret = ocirun_devices_ebpf_apply (d->fd, d->abs, rules, n, err);
      if (ret < 0)
        ocirun_error_prefix (err, R "devices");
      goto out;
    }

  /* A missing devices controller would leave every device open: fatal,
   * as for runc. */
  d = need (cg, "devices", R "devices", &ret, err);
  if (d == NULL)
    goto out;
  /* Only the difference from what the cgroup has now (v1.c): an update
   * never takes away, even for a moment, a device the container keeps. */
  ret = ocirun_cgroup_v1_devices_set (cg, d, rules, n, !creating, err);
out:
  if (ret < 0 && cg->rootless)
    {
      /* Not expected to work without privileges (runc ignores it too). */
      ocirun_debug (cg->log, "cgroup: device rules not applied (rootless): %s", err && *err ? (*err)->msg : "");
      ocirun_error_free (err);
      return 0;
    }
  return ret;
}

/* ------------------------------------------------------------------ all */

bool
ocirun_cgroup_resources_need_controllers (const oci_resources *r)
{
  if (r == NULL)
    return false;
  if (r->memory
      && ((r->memory->has_limit && r->memory->limit) || (r->memory->has_swap && r->memory->swap)
          || (r->memory->has_reservation && r->memory->reservation) || r->memory->has_swappiness
          || (r->memory->has_disable_oom_killer && r->memory->disable_oom_killer)))
    return true;
  if (r->cpu
      && ((r->cpu->has_shares && r->cpu->shares) || (r->cpu->has_quota && r->cpu->quota)
          || (r->cpu->has_period && r->cpu->period) || r->cpu->has_burst || r->cpu->has_idle
          || (r->cpu->has_realtime_period && r->cpu->realtime_period)
          || (r->cpu->has_realtime_runtime && r->cpu->realtime_runtime) || (r->cpu->cpus && *r->cpu->cpus)
          || (r->cpu->mems && *r->cpu->mems)))
    return true;
  if (r->pids && r->pids->has_limit && r->pids->limit)
    return true;
  if (r->block_io && block_io_set (r->block_io))
    return true;
  if (r->hugepage_limits_len || (r->rdma && r->rdma->len) || (r->unified && r->unified->len))
    return true;
  if (r->network && ((r->network->has_class_id && r->network->class_id) || r->network->priorities_len))
    return true;
  return false;
}

int
ocirun_cgroup_apply_resources (struct ocirun_cgroup *cg, const oci_resources *r, bool creating,
                               oci_device *const *linux_devices, size_t linux_devices_len, ocirun_error_t *err)
{
  int ret;

  /* runc's order: cpuset, devices, memory, cpu, pids, blkio, hugetlb, net,
   * rdma; v2-only knobs last. */
  if (r && r->cpu)
    {
      ret = cpuset (cg, r->cpu, err);
      if (ret < 0)
        return ret;
    }
  ret = devices (cg, r, creating, linux_devices, linux_devices_len, err);
  if (ret < 0 || r == NULL)
    return ret;
  ret = memory (cg, r->memory, err);
  if (ret == 0 && r->cpu)
    ret = is_v2 (cg) ? cpu_v2 (cg, r->cpu, err) : cpu_v1 (cg, r->cpu, err);
  if (ret == 0)
    ret = pids (cg, r->pids, err);
  if (ret == 0)
    ret = block_io (cg, r->block_io, err);
  if (ret == 0)
    ret = hugepages (cg, r->hugepage_limits, r->hugepage_limits_len, err);
  if (ret == 0)
    ret = network (cg, r->network, err);
  if (ret == 0)
    ret = rdma (cg, r->rdma, err);
  if (ret == 0)
    ret = unified (cg, r->unified, err);
  return ret;
}
