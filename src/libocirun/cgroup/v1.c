#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "devices-rules.h"
#include "../util.h"

static void
sleep_us (long us)
{
  struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
  nanosleep (&ts, NULL);
}

static bool
blank (const char *s)
{
  for (; *s; s++)
    if (*s != ' ' && *s != '\n' && *s != '\t')
      return false;
  return true;
}

/* A new cpuset cgroup starts with empty cpus and mems, and the kernel
 * refuses tasks in it until both are set: give every level of the path
 * its parent's values when it has none of its own. */
static int
cpuset_inherit (int parentfd, int fd, const char *where, const char *file, ocirun_error_t *err)
{
  cleanup_free char *mine = NULL;
  cleanup_free char *parent = NULL;
  cleanup_close int wfd = -1;
  size_t len;
  int ret;

  ret = ocirun_read_file_at (fd, file, &mine, NULL, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "cgroup `%s`", where);
  if (!blank (mine))
    return 0;
  ret = ocirun_read_file_at (parentfd, file, &parent, &len, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "parent of cgroup `%s`", where);
  if (blank (parent))
    return 0;
  wfd = openat (fd, file, O_WRONLY | O_CLOEXEC);
  if (wfd < 0)
    return ocirun_make_error (err, errno, "open `%s/%s`", where, file);
  if (TEMP_FAILURE_RETRY_INT (write (wfd, parent, len)) < 0)
    return ocirun_make_error (err, errno, "write `%s/%s`", where, file);
  return 0;
}

int
ocirun_cgroup_v1_prepare (struct ocirun_cgroup_dir *d, ocirun_error_t *err)
{
  cleanup_free char *copy = NULL;
  cleanup_close int cur = -1;
  char *save = NULL;
  int ret;

  if (!strstr (d->h.controllers, "cpuset") || strcmp (d->path, "/") == 0)
    return 0;

  cur = open (d->h.mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cur < 0)
    return ocirun_make_error (err, errno, "open `%s`", d->h.mountpoint);
  copy = xstrdup (d->path);
  for (char *name = strtok_r (copy, "/", &save); name; name = strtok_r (NULL, "/", &save))
    {
      int next = openat (cur, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      if (next < 0)
        return ocirun_make_error (err, errno, "open `%s` below `%s`", name, d->h.mountpoint);
      ret = cpuset_inherit (cur, next, d->abs, "cpuset.cpus", err);
      if (ret == 0)
        ret = cpuset_inherit (cur, next, d->abs, "cpuset.mems", err);
      close (cur);
      cur = next;
      if (ret < 0)
        return ret;
    }
  return 0;
}

static int
read_state (struct ocirun_cgroup_dir *d, char *buf, size_t size, ocirun_error_t *err)
{
  cleanup_free char *s = NULL;
  int ret = ocirun_cgroup_read (d, "freezer.state", &s, err);
  if (ret < 0)
    return ret;
  s[strcspn (s, "\n")] = '\0';
  snprintf (buf, size, "%s", s);
  return 0;
}

int
ocirun_cgroup_v1_freeze (struct ocirun_cgroup_dir *d, bool frozen, ocirun_error_t *err)
{
  char state[32];
  int ret;

  if (!frozen)
    return ocirun_cgroup_write (d, "cgroup freezer", "freezer.state", "THAWED", NULL, err);

  /* A v1 cgroup can stay FREEZING while new tasks keep arriving; like runc,
   * keep asking, and now and then thaw and pause to let them settle. */
  for (int i = 0; i < 1000; i++)
    {
      if (i % 50 == 49)
        {
          ocirun_cgroup_write (d, "cgroup freezer", "freezer.state", "THAWED", NULL, NULL);
          sleep_us (10000);
        }
      ret = ocirun_cgroup_write (d, "cgroup freezer", "freezer.state", "FROZEN", NULL, err);
      if (ret < 0)
        goto fail;
      if (i % 25 == 24)
        sleep_us (10);
      if (i % 200 == 199)
        sleep_us (100000L * (i / 200 + 1));
      ret = read_state (d, state, sizeof state, err);
      if (ret < 0)
        goto fail;
      if (strcmp (state, "FROZEN") == 0)
        return 0;
      if (strcmp (state, "FREEZING") != 0)
        {
          ret = ocirun_make_error (err, EIO, "cgroup `%s`: unexpected freezer state `%s` while freezing", d->abs,
                                   state);
          goto fail;
        }
    }
  ret = ocirun_make_error (err, EBUSY, "cgroup `%s`: unable to freeze (stuck in FREEZING)", d->abs);
fail:
  /* Half-frozen is the worst state to leave a container in. */
  ocirun_cgroup_write (d, "cgroup freezer", "freezer.state", "THAWED", NULL, NULL);
  return ret;
}

int
ocirun_cgroup_v1_is_frozen (struct ocirun_cgroup_dir *d, bool *frozen, ocirun_error_t *err)
{
  char state[32];
  int ret;

  *frozen = false;
  if (d->fd < 0)
    return 0;
  for (int i = 0; i < 5000; i++)
    {
      ret = read_state (d, state, sizeof state, err);
      if (ret < 0)
        return ret;
      if (strcmp (state, "THAWED") == 0)
        return 0;
      if (strcmp (state, "FROZEN") == 0)
        {
          cleanup_free char *self = NULL;
          /* Frozen through an ancestor is not the container being paused. */
          if (ocirun_read_file_at (d->fd, "freezer.self_freezing", &self, NULL, NULL) < 0)
            {
              *frozen = true;
              return 0;
            }
          *frozen = self[0] == '1';
          return 0;
        }
      if (strcmp (state, "FREEZING") != 0)
        return ocirun_make_error (err, EIO, "cgroup `%s`: unknown freezer state `%s`", d->abs, state);
      sleep_us (1000);
    }
  return ocirun_make_error (err, EBUSY, "cgroup `%s`: freezer stuck in FREEZING", d->abs);
}

/* ---------------------------------------------------------------- devices */

/* The controller only lets itself be changed one entry per write, and
 * writing "a" resets it: rewriting the whole list on every update would
 * deny every device to a running container for a moment. Instead (runc's
 * emulator), the current state is read back from devices.list, the target
 * state is computed from the rules (devices-rules.c), and only the
 * difference is written. */

static int
dev_read (struct ocirun_cgroup_dir *d, struct ocirun_dev_state *s, ocirun_error_t *err)
{
  cleanup_free char *list = NULL;
  int ret = ocirun_cgroup_read (d, "devices.list", &list, err);
  if (ret < 0)
    return ret;
  if (ocirun_dev_state_from_list (list, s, err) < 0)
    return ocirun_error_prefix (err, "`%s/devices.list`", d->abs);
  return 0;
}

static int
dev_write (struct ocirun_cgroup_dir *d, bool allow, char type, int64_t major, int64_t minor, unsigned perms,
           ocirun_error_t *err)
{
  char text[80];
  if (type == 'a')
    snprintf (text, sizeof text, "a");
  else
    ocirun_dev_text (type, major, minor, perms, text, sizeof text);
  return ocirun_cgroup_write (d, "linux.resources.devices", allow ? "devices.allow" : "devices.deny", text, NULL, err);
}

int
ocirun_cgroup_v1_devices_set (struct ocirun_cgroup *cg, struct ocirun_cgroup_dir *d,
                              const struct ocirun_device_rule *rules, size_t n, bool running, ocirun_error_t *err)
{
  cleanup_dev_state struct ocirun_dev_state cur = { 0 }, want = { 0 }, after = { 0 };
  bool reset, froze = false;
  int ret;

  ret = ocirun_dev_state_from_rules (rules, n, &want, err);
  if (ret < 0)
    ocirun_error_prefix (err, "linux.resources.devices");
  if (ret == 0)
    ret = dev_read (d, &cur, err);
  if (ret < 0)
    goto out;

  /* A default that changes needs the disruptive "a" write; so does a
   * default-allow cgroup, whose exceptions devices.list does not show. */
  reset = cur.default_allow || cur.default_allow != want.default_allow;
  if (reset)
    {
      /* Between "deny everything" and the allow rules that follow, a
       * running container would be refused devices it may use; and the
       * kernel drops the exceptions before it switches the default, so
       * even "allow everything" has such a moment: the container does not
       * run meanwhile. */
      if (running)
        {
          bool was = false;
          cleanup_error ocirun_error_t ferr = NULL;
          if (ocirun_cgroup_is_frozen (cg, &was, NULL) == 0 && !was)
            {
              if (ocirun_cgroup_freeze (cg, true, &ferr) == 0)
                froze = true;
              else
                ocirun_debug (cg->log, "cgroup: device rules: cannot freeze the container: %s", ferr->msg);
            }
        }
      ret = dev_write (d, want.default_allow, 'a', -1, -1, OCIRUN_DEV_R | OCIRUN_DEV_W | OCIRUN_DEV_M, err);
      if (ret < 0)
        goto out;
      ocirun_dev_state_free (&cur);
      cur.default_allow = want.default_allow;
    }

  /* What is gained first, what is dropped after: a device allowed before
   * and after is never denied in between. */
  for (size_t i = 0; i < want.len; i++)
    {
      const struct ocirun_dev_exception *w = &want.ex[i], *c = ocirun_dev_find (&cur, w->type, w->major, w->minor);
      unsigned gained = w->perms & ~(c ? c->perms : 0);
      if (gained)
        {
          ret = dev_write (d, !want.default_allow, w->type, w->major, w->minor, gained, err);
          if (ret < 0)
            goto out;
        }
    }
  for (size_t i = 0; i < cur.len; i++)
    {
      const struct ocirun_dev_exception *c = &cur.ex[i], *w = ocirun_dev_find (&want, c->type, c->major, c->minor);
      unsigned dropped = c->perms & ~(w ? w->perms : 0);
      if (dropped)
        {
          ret = dev_write (d, want.default_allow, c->type, c->major, c->minor, dropped, err);
          if (ret < 0)
            goto out;
        }
    }

  /* The kernel can ignore a write it does not like: check the result (only
   * the default can be checked when it is allow). */
  ret = dev_read (d, &after, err);
  if (ret == 0 && (want.default_allow ? !after.default_allow : !ocirun_dev_state_equal (&after, &want)))
    ret = ocirun_make_error (err, -EIO,
                             "linux.resources.devices: `%s/devices.list` does not match the rules after "
                             "applying them",
                             d->abs);

out:
  if (froze)
    {
      cleanup_error ocirun_error_t ferr = NULL;
      if (ocirun_cgroup_freeze (cg, false, &ferr) < 0 && ret == 0)
        ret = ocirun_make_error (err, -EIO, "cgroup: device rules: thaw: %s", ferr->msg);
    }
  return ret;
}
