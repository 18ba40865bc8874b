#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "container.h"
#include "pidref.h"
#include "util.h"

/* Container commands that act on the cgroup of a running container:
 * pause, resume, update, events. */

/* The copy of the config kept in the state directory (container.c's
 * STATE_CONFIG): `update` records the new limits there. */
#define STORED_CONFIG "config.json"

static int
need_cgroup (struct ocirun_context *ctx, struct ocirun_loaded *l, ocirun_error_t *err)
{
  if (l->cg == NULL)
    return ocirun_make_error (err, -ENOTSUP, "container `%s` has no cgroup", ctx->id);
  return 0;
}

int
ocirun_container_pause (struct ocirun_context *ctx, ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  int ret = ocirun_load_container (ctx, true, false, &l, err);

  if (ret < 0)
    return ret;
  /* runc: only a running or created container can be paused. */
  if (l.status != OCIRUN_STATUS_RUNNING && l.status != OCIRUN_STATUS_CREATED)
    return ocirun_make_error (err, -EINVAL, "container not running");
  ret = need_cgroup (ctx, &l, err);
  if (ret < 0)
    return ret;
  return ocirun_cgroup_freeze (l.cg, true, err);
}

int
ocirun_container_resume (struct ocirun_context *ctx, ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  int ret = ocirun_load_container (ctx, true, false, &l, err);

  if (ret < 0)
    return ret;
  if (l.status != OCIRUN_STATUS_PAUSED)
    return ocirun_make_error (err, -EINVAL, "container not paused");
  return ocirun_cgroup_freeze (l.cg, false, err);
}

/* ------------------------------------------------------------------ update */

#define TAKE_NUM(dst, src, f)                                                                                          \
  do                                                                                                                   \
    {                                                                                                                  \
      if ((src)->has_##f && (src)->f != 0)                                                                             \
        {                                                                                                              \
          (dst)->f = (src)->f;                                                                                         \
          (dst)->has_##f = true;                                                                                       \
        }                                                                                                              \
    }                                                                                                                  \
  while (0)

#define TAKE_STR(dst, src, f)                                                                                          \
  do                                                                                                                   \
    {                                                                                                                  \
      if ((src)->f && *(src)->f)                                                                                       \
        {                                                                                                              \
          free ((dst)->f);                                                                                             \
          (dst)->f = xstrdup ((src)->f);                                                                               \
        }                                                                                                              \
    }                                                                                                                  \
  while (0)

/* Copies into dst what `runc update` changes (memory, cpu, pids, the block
 * I/O weight, unified): like runc, a zero or absent value leaves the
 * setting as it is, and the rest of linux.resources (hugepages,
 * throttles...) is not updated. Device rules are, unlike runc's (which
 * keeps those of create): a non-empty list replaces the old one; the cgroup
 * layer only writes the difference, so the container keeps the devices both
 * allow. */
static void
merge_resources (oci_resources *dst, const oci_resources *src)
{
  if (src->devices_len)
    {
      for (size_t i = 0; i < dst->devices_len; i++)
        oci_device_cgroup_free (dst->devices[i]);
      free (dst->devices);
      dst->devices = xmalloc0 (src->devices_len * sizeof *dst->devices);
      for (size_t i = 0; i < src->devices_len; i++)
        {
          oci_device_cgroup *d = xmalloc0 (sizeof *d);
          *d = *src->devices[i];
          d->type = src->devices[i]->type ? xstrdup (src->devices[i]->type) : NULL;
          d->access = src->devices[i]->access ? xstrdup (src->devices[i]->access) : NULL;
          dst->devices[i] = d;
        }
      dst->devices_len = src->devices_len;
      dst->has_devices = true;
    }
  if (src->memory)
    {
      if (dst->memory == NULL)
        dst->memory = xmalloc0 (sizeof *dst->memory);
      TAKE_NUM (dst->memory, src->memory, limit);
      TAKE_NUM (dst->memory, src->memory, reservation);
      TAKE_NUM (dst->memory, src->memory, swap);
      TAKE_NUM (dst->memory, src->memory, kernel);
      TAKE_NUM (dst->memory, src->memory, kernel_tcp);
      if (src->memory->has_check_before_update)
        {
          dst->memory->check_before_update = src->memory->check_before_update;
          dst->memory->has_check_before_update = true;
        }
    }
  if (src->cpu)
    {
      if (dst->cpu == NULL)
        dst->cpu = xmalloc0 (sizeof *dst->cpu);
      TAKE_NUM (dst->cpu, src->cpu, shares);
      TAKE_NUM (dst->cpu, src->cpu, quota);
      TAKE_NUM (dst->cpu, src->cpu, period);
      TAKE_NUM (dst->cpu, src->cpu, realtime_runtime);
      TAKE_NUM (dst->cpu, src->cpu, realtime_period);
      TAKE_STR (dst->cpu, src->cpu, cpus);
      TAKE_STR (dst->cpu, src->cpu, mems);
    }
  if (src->pids && src->pids->has_limit && src->pids->limit != 0)
    {
      if (dst->pids == NULL)
        dst->pids = xmalloc0 (sizeof *dst->pids);
      dst->pids->limit = src->pids->limit;
      dst->pids->has_limit = true;
    }
  if (src->block_io)
    {
      if (dst->block_io == NULL)
        dst->block_io = xmalloc0 (sizeof *dst->block_io);
      TAKE_NUM (dst->block_io, src->block_io, weight);
    }
  if (src->unified && src->unified->len)
    {
      if (dst->unified == NULL)
        dst->unified = xmalloc0 (sizeof *dst->unified);
      for (size_t i = 0; i < src->unified->len; i++)
        {
          size_t k;
          for (k = 0; k < dst->unified->len; k++)
            if (strcmp (dst->unified->keys[k], src->unified->keys[i]) == 0)
              break;
          if (k == dst->unified->len)
            {
              dst->unified->keys = xrealloc (dst->unified->keys, (k + 2) * sizeof (char *));
              dst->unified->values = xrealloc (dst->unified->values, (k + 2) * sizeof (char *));
              dst->unified->keys[k] = xstrdup (src->unified->keys[i]);
              dst->unified->values[k] = NULL;
              dst->unified->len++;
              dst->unified->keys[k + 1] = NULL;
              dst->unified->values[k + 1] = NULL;
            }
          free (dst->unified->values[k]);
          dst->unified->values[k] = xstrdup (src->unified->values[i] ? src->unified->values[i] : "");
        }
    }
}

int
ocirun_container_update (struct ocirun_context *ctx, const oci_resources *r, ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  cleanup_free char *json = NULL;
  oci_resources *apply = NULL;
  size_t len = 0;
  int ret;

  ret = ocirun_load_container (ctx, true, true, &l, err);
  if (ret < 0)
    return ret;
  if (l.status == OCIRUN_STATUS_STOPPED)
    return ocirun_make_error (err, -EINVAL, "container not running");
  ret = need_cgroup (ctx, &l, err);
  if (ret < 0)
    return ret;

  /* Only what this call changes goes to the cgroup. */
  apply = xmalloc0 (sizeof *apply);
  merge_resources (apply, r);
  /* The devices of linux.devices replace runc's default rules for their
   * paths, as they did at create. */
  ret = ocirun_cgroup_update (l.cg, apply, l.config->linux ? l.config->linux->devices : NULL,
                              l.config->linux ? l.config->linux->devices_len : 0, err);
  oci_resources_free (apply);
  if (ret < 0)
    return ret;

  if (l.config->linux == NULL)
    l.config->linux = xmalloc0 (sizeof *l.config->linux);
  if (l.config->linux->resources == NULL)
    l.config->linux->resources = xmalloc0 (sizeof *l.config->linux->resources);
  merge_resources (l.config->linux->resources, r);
  json = oci_config_to_json (l.config, 0, &len);
  ret = ocirun_write_file_atomic_at (l.dirfd, STORED_CONFIG, json, len, 0600, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "update: record the new resources");
  return 0;
}

/* ------------------------------------------------------------------ events */

int
ocirun_container_stats (struct ocirun_context *ctx, char **json, ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  int ret = ocirun_load_container (ctx, false, false, &l, err);

  *json = NULL;
  if (ret < 0)
    return ret;
  if (l.status == OCIRUN_STATUS_STOPPED)
    return ocirun_make_error (err, -EINVAL, "container with id %s is not running", ctx->id);
  ret = need_cgroup (ctx, &l, err);
  if (ret < 0)
    return ret;
  return ocirun_cgroup_stats_json (l.cg, ctx->id, json, err);
}

int
ocirun_container_events (struct ocirun_context *ctx, uint64_t interval_ms, ocirun_event_fn fn, void *data,
                         ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  cleanup_cgroup struct ocirun_cgroup *cg = NULL;
  cleanup_pidref struct ocirun_pidref init = { .fd = -1 };
  cleanup_free char *oom_line = NULL;
  struct ocirun_cgroup_oom *oom = NULL;
  uint64_t next;
  int ret;

  ret = ocirun_load_container (ctx, false, false, &l, err);
  if (ret < 0)
    return ret;
  if (l.status == OCIRUN_STATUS_STOPPED)
    return ocirun_make_error (err, -EINVAL, "container with id %s is not running", ctx->id);
  ret = need_cgroup (ctx, &l, err);
  if (ret < 0)
    return ret;
  if (ocirun_pidref_open (&init, l.st->pid, l.st->pid_start_time) < 0)
    return ocirun_make_error (err, -EINVAL, "container with id %s is not running", ctx->id);
  /* Keep the cgroup, drop the state lock: a long `events` must not block
   * `delete`. */
  cg = l.cg;
  l.cg = NULL;
  ocirun_loaded_free (&l);

  ret = ocirun_cgroup_oom_open (cg, &oom, err);
  if (ret < 0)
    return ret;
  xasprintf (&oom_line, "{\"type\":\"oom\",\"id\":\"%s\"}", ctx->id);
  if (interval_ms == 0)
    interval_ms = 1;
  next = ocirun_now_ms () + interval_ms;
  for (;;)
    {
      /* poll skips a negative fd: without a pidfd (old kernels) the init's
       * exit is looked for at least every second. */
      struct pollfd p[2] = { { init.fd, POLLIN, 0 }, { ocirun_cgroup_oom_fd (oom), POLLIN, 0 } };
      uint64_t t = ocirun_now_ms ();
      int cap = init.fd >= 0 ? 60000 : 1000;
      int timeout = t >= next ? 0 : (int)(next - t > (uint64_t)cap ? (uint64_t)cap : next - t);
      int n = poll (p, oom ? 2 : 1, timeout);

      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          ret = ocirun_make_error (err, errno, "events: poll");
          break;
        }
      if (oom && (p[1].revents & POLLIN))
        {
          unsigned count = 0;
          ocirun_cgroup_oom_read (oom, &count);
          for (unsigned i = 0; i < count; i++)
            if ((ret = fn (oom_line, data)) < 0)
              break;
          if (ret < 0)
            break;
        }
      if (oom && (p[1].revents & (POLLERR | POLLHUP | POLLNVAL)))
        {
          /* Nothing more will come from it; do not spin on it. */
          ocirun_cgroup_oom_close (oom);
          oom = NULL;
        }
      if ((p[0].revents & (POLLIN | POLLHUP)) || (init.fd < 0 && !ocirun_pidref_alive (&init)))
        {
          ret = 0; /* the container stopped */
          break;
        }
      if (ocirun_now_ms () >= next)
        {
          cleanup_free char *json = NULL;
          cleanup_error ocirun_error_t e = NULL;
          next += interval_ms;
          if (ocirun_cgroup_stats_json (cg, ctx->id, &json, &e) < 0)
            ocirun_warning (ctx->log, "events: %s", e->msg);
          else if ((ret = fn (json, data)) < 0)
            break;
        }
    }
  ocirun_cgroup_oom_close (oom);
  return ret;
}
