#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "cgroup-internal.h"
#include "systemd.h"
#include "../util.h"

#define MANAGER_CGROUPFS "cgroupfs"
#define MANAGER_SYSTEMD "systemd"

/* The v1 hierarchies runc joins: every controller it knows plus the named
 * systemd hierarchy. Other named hierarchies belong to someone else. */
static const char *const known_v1[] = {
  "cpuset",  "devices",  "memory",     "cpu",     "cpuacct", "pids", "blkio",        "hugetlb",
  "net_cls", "net_prio", "perf_event", "freezer", "rdma",    "misc", "name=systemd", NULL,
};

static bool
is_known_v1 (const char *name)
{
  for (size_t i = 0; known_v1[i]; i++)
    if (strcmp (known_v1[i], name) == 0)
      return true;
  return false;
}

int
ocirun_cgroup_mode (ocirun_error_t *err)
{
  struct statfs st;

  if (statfs (OCIRUN_CGROUP_ROOT, &st) < 0)
    return ocirun_make_error (err, errno, "statfs `%s`", OCIRUN_CGROUP_ROOT);
  if (st.f_type == CGROUP2_SUPER_MAGIC)
    return OCIRUN_CGROUP_V2;
  /* A lone v1 hierarchy mounted on the root itself. */
  if (st.f_type == CGROUP_SUPER_MAGIC)
    return OCIRUN_CGROUP_V1;
  if (st.f_type != TMPFS_MAGIC)
    return ocirun_make_error (err, ENOTSUP, "`%s` is neither a cgroup2 mount nor a tmpfs holding cgroup hierarchies",
                              OCIRUN_CGROUP_ROOT);
  if (statfs (OCIRUN_CGROUP_ROOT "/unified", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC)
    return OCIRUN_CGROUP_HYBRID;
  return OCIRUN_CGROUP_V1;
}

/* ---------------------------------------------------------------- layout */

static void
hierarchy_clear (struct ocirun_cgroup_hierarchy *h)
{
  free (h->mountpoint);
  free (h->mount_root);
  free (h->controllers);
  memset (h, 0, sizeof *h);
}

static void
hierarchy_copy (struct ocirun_cgroup_hierarchy *dst, const struct ocirun_cgroup_hierarchy *src)
{
  dst->mountpoint = xstrdup (src->mountpoint);
  dst->mount_root = xstrdup (src->mount_root);
  dst->controllers = xstrdup (src->controllers);
  dst->unified = src->unified;
}

void
ocirun_cgroup_layout_clear (struct ocirun_cgroup_layout *l)
{
  for (size_t i = 0; i < l->len; i++)
    hierarchy_clear (&l->h[i]);
  free (l->h);
  l->h = NULL;
  l->len = 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void
unescape_octal (char *s)
{
  char *w = s;
  for (char *r = s; *r;)
    {
      if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7')
        {
          *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
          r += 4;
        }
      else
        *w++ = *r++;
    }
  *w = '\0';
}

/* The known controllers among a v1 mount's super options, comma-joined in
 * the kernel's order (the same spelling /proc/self/cgroup uses). */
static char *
v1_controllers (const char *superopts)
{
  cleanup_free char *copy = xstrdup (superopts);
  char *saveptr = NULL, *out = NULL;
  size_t len = 0;

  for (char *tok = strtok_r (copy, ",", &saveptr); tok; tok = strtok_r (NULL, ",", &saveptr))
    {
      size_t n;
      if (!is_known_v1 (tok))
        continue;
      n = strlen (tok);
      out = xrealloc (out, len + n + 2);
      if (len)
        out[len++] = ',';
      memcpy (out + len, tok, n + 1);
      len += n;
    }
  return out;
}

int
ocirun_cgroup_layout_parse_mountinfo (const char *mountinfo, enum ocirun_cgroup_mode mode,
                                      struct ocirun_cgroup_layout *out, ocirun_error_t *err)
{
  cleanup_free char *copy = xstrdup (mountinfo);
  const char *want_unified = NULL;
  char *saveline = NULL;

  memset (out, 0, sizeof *out);
  out->mode = mode;
  if (mode == OCIRUN_CGROUP_V2)
    want_unified = OCIRUN_CGROUP_ROOT;
  else if (mode == OCIRUN_CGROUP_HYBRID)
    want_unified = OCIRUN_CGROUP_ROOT "/unified";

  for (char *line = strtok_r (copy, "\n", &saveline); line; line = strtok_r (NULL, "\n", &saveline))
    {
      char *fields[6] = { NULL };
      char *sep, *fstype, *superopts, *save = NULL, *save2 = NULL;
      cleanup_free char *controllers = NULL;
      struct ocirun_cgroup_hierarchy h = { 0 };
      bool dup = false;

      sep = strstr (line, " - ");
      if (sep == NULL)
        continue;
      *sep = '\0';
      fstype = strtok_r (sep + 3, " ", &save);
      if (fstype == NULL || strtok_r (NULL, " ", &save) == NULL)
        continue;
      superopts = strtok_r (NULL, " ", &save);
      if (superopts == NULL)
        superopts = (char *)"";

      for (size_t i = 0; i < 6; i++)
        {
          fields[i] = strtok_r (i == 0 ? line : NULL, " ", &save2);
          if (fields[i] == NULL)
            break;
        }
      if (fields[4] == NULL)
        continue;
      unescape_octal (fields[3]);
      unescape_octal (fields[4]);

      if (strcmp (fstype, "cgroup2") == 0)
        {
          if (want_unified == NULL || strcmp (fields[4], want_unified) != 0)
            continue;
          controllers = xstrdup ("");
          h.unified = true;
        }
      else if (strcmp (fstype, "cgroup") == 0)
        {
          if (mode == OCIRUN_CGROUP_V2)
            continue;
          controllers = v1_controllers (superopts);
          if (controllers == NULL)
            continue;
        }
      else
        continue;

      /* The same hierarchy mounted twice: the first mount wins. */
      for (size_t i = 0; i < out->len; i++)
        if (out->h[i].unified == h.unified && strcmp (out->h[i].controllers, controllers) == 0)
          dup = true;
      if (dup)
        continue;

      h.mountpoint = xstrdup (fields[4]);
      h.mount_root = xstrdup (fields[3]);
      h.controllers = steal_pointer (&controllers);
      out->h = xrealloc (out->h, (out->len + 1) * sizeof *out->h);
      out->h[out->len++] = h;
    }

  if (out->len == 0)
    return ocirun_make_error (err, ENOENT, "no cgroup hierarchy is mounted (looked for %s)",
                              mode == OCIRUN_CGROUP_V2 ? "cgroup2 on " OCIRUN_CGROUP_ROOT : "cgroup v1 mounts");
  if (want_unified && mode == OCIRUN_CGROUP_V2 && !out->h[0].unified)
    return ocirun_make_error (err, ENOENT, "no cgroup2 mount at `%s`", want_unified);
  return 0;
}

int
ocirun_cgroup_layout_detect (struct ocirun_cgroup_layout *out, ocirun_error_t *err)
{
  cleanup_free char *mountinfo = NULL;
  int mode, ret;

  mode = ocirun_cgroup_mode (err);
  if (mode < 0)
    return mode;
  ret = ocirun_read_file ("/proc/self/mountinfo", &mountinfo, NULL, err);
  if (ret < 0)
    return ret;
  ret = ocirun_cgroup_layout_parse_mountinfo (mountinfo, mode, out, err);
  if (ret < 0)
    ocirun_cgroup_layout_clear (out);
  return ret;
}

/* ----------------------------------------------------------------- paths */

char *
ocirun_cgroup_clean_path (const char *path, bool *absolute)
{
  cleanup_free char *copy = NULL;
  char *out, *saveptr = NULL;
  size_t len = 0;

  if (path == NULL || *path == '\0')
    return NULL;
  *absolute = path[0] == '/';
  copy = xstrdup (path);
  out = xmalloc0 (strlen (path) + 2);
  for (char *tok = strtok_r (copy, "/", &saveptr); tok; tok = strtok_r (NULL, "/", &saveptr))
    {
      if (strcmp (tok, ".") == 0)
        continue;
      if (strcmp (tok, "..") == 0)
        {
          /* Lexically, and never above the root: "a/../../b" is "/b". */
          while (len > 0 && out[len - 1] != '/')
            len--;
          if (len > 0)
            len--;
          out[len] = '\0';
          continue;
        }
      out[len++] = '/';
      strcpy (out + len, tok);
      len += strlen (tok);
    }
  if (len == 0)
    strcpy (out, "/");
  return out;
}

static char *
join_path (const char *a, const char *b)
{
  char *r;
  if (strcmp (a, "/") == 0 || *a == '\0')
    return xstrdup (b);
  if (strcmp (b, "/") == 0)
    return xstrdup (a);
  xasprintf (&r, "%s%s", a, b);
  return r;
}

static bool
controllers_intersect (const char *a, const char *b)
{
  cleanup_free char *ca = xstrdup (a);
  char *sa = NULL;

  for (char *ta = strtok_r (ca, ",", &sa); ta; ta = strtok_r (NULL, ",", &sa))
    {
      cleanup_free char *cb = xstrdup (b);
      char *sb = NULL;
      for (char *tb = strtok_r (cb, ",", &sb); tb; tb = strtok_r (NULL, ",", &sb))
        if (strcmp (ta, tb) == 0)
          return true;
    }
  return false;
}

/* The caller's own cgroup in hierarchy h, from /proc/self/cgroup text. */
static int
own_cgroup (const char *self_cgroup, const struct ocirun_cgroup_hierarchy *h, char **out, ocirun_error_t *err)
{
  cleanup_free char *copy = xstrdup (self_cgroup);
  char *save = NULL;

  for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *c1 = strchr (line, ':'), *c2;
      if (c1 == NULL)
        continue;
      c2 = strchr (c1 + 1, ':');
      if (c2 == NULL)
        continue;
      *c2 = '\0';
      if (h->unified ? (c1[1] == '\0' && strncmp (line, "0:", 2) == 0) : controllers_intersect (c1 + 1, h->controllers))
        {
          *out = xstrdup (c2 + 1);
          return 0;
        }
    }
  return ocirun_make_error (err, ENOENT, "no `%s` hierarchy in /proc/self/cgroup",
                            h->unified ? "cgroup2" : h->controllers);
}

/* Where a container's cgroup lives in one hierarchy, relative to its mount
 * point, following runc: an absolute cgroupsPath is used as is; a relative
 * one (the container id when there is none) goes below the caller's own
 * cgroup, and on a pure v2 host below the parent of it, since the caller's
 * own cgroup holds processes and could not delegate controllers. */
static int
resolve_path (const struct ocirun_cgroup_layout *layout, const char *self_cgroup,
              const struct ocirun_cgroup_hierarchy *h, const char *clean, bool absolute, char **out,
              ocirun_error_t *err)
{
  cleanup_free char *own = NULL;
  const char *rel;
  size_t rootlen;
  int ret;

  if (absolute)
    {
      *out = xstrdup (clean);
      return 0;
    }
  ret = own_cgroup (self_cgroup, h, &own, err);
  if (ret < 0)
    return ret;
  if (layout->mode == OCIRUN_CGROUP_V2 && h->unified)
    {
      char *slash = strrchr (own, '/');
      if (slash == own || slash == NULL)
        strcpy (own, "/");
      else
        *slash = '\0';
    }
  /* /proc/self/cgroup is relative to the hierarchy's root, the mount may
   * show a subtree of it (a container without a cgroup namespace). */
  rel = own;
  rootlen = strlen (h->mount_root);
  if (strcmp (h->mount_root, "/") != 0 && strncmp (own, h->mount_root, rootlen) == 0
      && (own[rootlen] == '/' || own[rootlen] == '\0'))
    rel = own[rootlen] ? own + rootlen : "/";
  *out = join_path (rel, clean);
  return 0;
}

/* -------------------------------------------------------------- the dirs */

static void
dir_clear (struct ocirun_cgroup_dir *d)
{
  hierarchy_clear (&d->h);
  free (d->path);
  free (d->abs);
  if (d->fd >= 0)
    close (d->fd);
  d->fd = -1;
  for (size_t i = 0; i < d->created_len; i++)
    free (d->created[i]);
  free (d->created);
  d->created = NULL;
  d->created_len = 0;
}

static struct ocirun_cgroup *
cgroup_new (enum ocirun_cgroup_mode mode, size_t n, struct ocirun_logger *log)
{
  struct ocirun_cgroup *cg = xmalloc0 (sizeof *cg);
  cg->mode = mode;
  cg->log = log;
  cg->dirs = xmalloc0 ((n ? n : 1) * sizeof *cg->dirs);
  return cg;
}

static void
cgroup_add_dir (struct ocirun_cgroup *cg, const struct ocirun_cgroup_hierarchy *h, char *path)
{
  struct ocirun_cgroup_dir *d = &cg->dirs[cg->len++];
  hierarchy_copy (&d->h, h);
  d->path = path;
  d->abs = join_path (h->mountpoint, path);
  if (strcmp (h->mountpoint, "/") == 0)
    {
      free (d->abs);
      d->abs = xstrdup (path);
    }
  d->fd = -1;
}

static int
dir_open (struct ocirun_cgroup_dir *d, bool missing_ok, ocirun_error_t *err)
{
  d->fd = open (d->abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d->fd < 0)
    {
      if (errno == ENOENT && missing_ok)
        return 0;
      return ocirun_make_error (err, errno, "open `%s`", d->abs);
    }
  return 0;
}

/* mkdir -p that remembers what it made, so a failed create leaves nothing. */
static int
dir_mkdir (struct ocirun_cgroup_dir *d, ocirun_error_t *err)
{
  cleanup_free char *buf = xstrdup (d->abs);
  size_t start = strlen (d->h.mountpoint);

  for (char *p = buf + start; *p;)
    {
      char *slash;
      while (*p == '/')
        p++;
      if (*p == '\0')
        break;
      slash = strchr (p, '/');
      if (slash)
        *slash = '\0';
      if (mkdir (buf, 0755) == 0)
        {
          d->created = xrealloc (d->created, (d->created_len + 1) * sizeof *d->created);
          d->created[d->created_len++] = xstrdup (buf);
        }
      else if (errno != EEXIST)
        return ocirun_make_error (err, errno, "mkdir `%s`", buf);
      if (slash == NULL)
        break;
      *slash = '/';
      p = slash + 1;
    }
  return 0;
}

static void
dir_rollback (struct ocirun_cgroup_dir *d)
{
  for (size_t i = d->created_len; i > 0; i--)
    rmdir (d->created[i - 1]);
}

static void
cgroup_rollback (struct ocirun_cgroup *cg)
{
  for (size_t i = 0; i < cg->len; i++)
    dir_rollback (&cg->dirs[i]);
}

struct ocirun_cgroup_dir *
ocirun_cgroup_unified (struct ocirun_cgroup *cg)
{
  for (size_t i = 0; i < cg->len; i++)
    if (cg->dirs[i].h.unified)
      return &cg->dirs[i];
  return NULL;
}

struct ocirun_cgroup_dir *
ocirun_cgroup_find (struct ocirun_cgroup *cg, const char *controller)
{
  if (cg->mode == OCIRUN_CGROUP_V2)
    return ocirun_cgroup_unified (cg);
  for (size_t i = 0; i < cg->len; i++)
    if (!cg->dirs[i].h.unified && controllers_intersect (cg->dirs[i].h.controllers, controller))
      return &cg->dirs[i];
  return NULL;
}

const char *
ocirun_cgroup_denied (struct ocirun_cgroup *cg, const char *controller)
{
  for (size_t i = 0; i < cg->denied_len; i++)
    if (cg->mode == OCIRUN_CGROUP_V2 || controllers_intersect (cg->denied[i], controller))
      return cg->denied[i];
  return NULL;
}

bool
ocirun_cgroup_has_file (struct ocirun_cgroup_dir *d, const char *file)
{
  return d->fd >= 0 && faccessat (d->fd, file, F_OK, 0) == 0;
}

int
ocirun_cgroup_write (struct ocirun_cgroup_dir *d, const char *setting, const char *file, const char *value,
                     const char *hint, ocirun_error_t *err)
{
  cleanup_close int fd = -1;
  size_t len = strlen (value);
  ssize_t r;

  if (d->fd < 0)
    return ocirun_make_error (err, ENOENT, "%s: the cgroup `%s` does not exist", setting, d->abs);
  fd = openat (d->fd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return ocirun_make_error (err, ENOENT, "%s: `%s` does not exist in `%s`%s%s%s", setting, file, d->abs,
                                  hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
      return ocirun_make_error (err, errno, "%s: open `%s/%s`", setting, d->abs, file);
    }
  /* A cgroup knob takes one value per write(2). */
  r = TEMP_FAILURE_RETRY_INT (write (fd, value, len));
  if (r < 0)
    return ocirun_make_error (err, errno, "%s: write `%s` to `%s/%s`", setting, value, d->abs, file);
  if ((size_t)r != len)
    return ocirun_make_error (err, EIO, "%s: short write of `%s` to `%s/%s`", setting, value, d->abs, file);
  return 0;
}

int
ocirun_cgroup_read (struct ocirun_cgroup_dir *d, const char *file, char **out, ocirun_error_t *err)
{
  int ret;
  if (d->fd < 0)
    return ocirun_make_error (err, ENOENT, "the cgroup `%s` does not exist", d->abs);
  ret = ocirun_read_file_at (d->fd, file, out, NULL, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "cgroup `%s`", d->abs);
  return 0;
}

int
ocirun_cgroup_read_u64 (struct ocirun_cgroup_dir *d, const char *file, uint64_t *out, ocirun_error_t *err)
{
  cleanup_free char *buf = NULL;
  char *end;
  int ret;

  ret = ocirun_cgroup_read (d, file, &buf, err);
  if (ret < 0)
    return ret;
  if (strncmp (buf, "max", 3) == 0)
    {
      *out = UINT64_MAX;
      return 0;
    }
  errno = 0;
  *out = strtoull (buf, &end, 10);
  if (errno || end == buf)
    return ocirun_make_error (err, EINVAL, "`%s/%s`: not a number: `%s`", d->abs, file, buf);
  return 0;
}

/* ---------------------------------------------------------------- create */

static char *
make_stored_path (struct ocirun_cgroup *cg)
{
  bool uniform = true;
  char *out = NULL;
  size_t len = 0;

  for (size_t i = 1; i < cg->len; i++)
    if (strcmp (cg->dirs[i].path, cg->dirs[0].path) != 0)
      uniform = false;
  /* A plain path means "every hierarchy" to load: not when some were
   * denied. */
  if (uniform && cg->denied_len == 0)
    return xstrdup (cg->dirs[0].path);

  /* The caller sat in different cgroups per hierarchy and the path was
   * relative: keep one "controllers:path" line per hierarchy, the format of
   * /proc/PID/cgroup without the hierarchy ids. */
  for (size_t i = 0; i < cg->len; i++)
    {
      cleanup_free char *line = NULL;
      size_t n = xasprintf (&line, "%s%s:%s", i ? "\n" : "", cg->dirs[i].h.controllers, cg->dirs[i].path);
      out = xrealloc (out, len + n + 1);
      memcpy (out + len, line, n + 1);
      len += n;
    }
  return out;
}

static bool
is_permission_error (int e)
{
  return e == EACCES || e == EPERM || e == EROFS;
}

int
ocirun_cgroup_create_in (const struct ocirun_cgroup_layout *layout, const char *self_cgroup,
                         const struct ocirun_cgroup_request *req, struct ocirun_cgroup **out, ocirun_error_t *err)
{
  cleanup_free char *self_buf = NULL;
  cleanup_free char *clean = NULL;
  struct ocirun_cgroup *cg = NULL;
  bool absolute = false;
  int ret;

  *out = NULL;
  if (req->systemd)
    return ocirun_make_error (err, ENOTSUP, "systemd cgroup driver: not available yet");

  if (req->cgroups_path && *req->cgroups_path)
    {
      if (strchr (req->cgroups_path, '\n'))
        return ocirun_make_error (err, EINVAL, "linux.cgroupsPath: must not contain a newline");
      clean = ocirun_cgroup_clean_path (req->cgroups_path, &absolute);
    }
  else
    {
      if (req->id == NULL || *req->id == '\0' || strchr (req->id, '/') || strchr (req->id, '\n'))
        return ocirun_make_error (err, EINVAL, "cgroup: invalid container id `%s`", req->id ? req->id : "");
      clean = ocirun_cgroup_clean_path (req->id, &absolute);
    }

  if (!absolute && self_cgroup == NULL)
    {
      ret = ocirun_read_file ("/proc/self/cgroup", &self_buf, NULL, err);
      if (ret < 0)
        return ret;
      self_cgroup = self_buf;
    }

  cg = cgroup_new (layout->mode, layout->len, req->log);
  cg->rootless = req->rootless;
  for (size_t i = 0; i < layout->len; i++)
    {
      char *path = NULL;
      ret = resolve_path (layout, self_cgroup, &layout->h[i], clean, absolute, &path, err);
      if (ret < 0)
        goto fail;
      cgroup_add_dir (cg, &layout->h[i], path);
    }

  for (size_t i = 0; i < cg->len; i++)
    {
      struct ocirun_cgroup_dir *d = &cg->dirs[i];
      ret = dir_mkdir (d, err);
      if (ret < 0 && req->rootless && is_permission_error (-ret))
        {
          /* runc's rule: without a delegated cgroup a rootless container
           * may still run, but only when nothing asked for a cgroup; a
           * hierarchy that is delegated is still used (the limits that need
           * a denied one fail when they are applied, naming it). */
          if (req->cgroups_path && *req->cgroups_path)
            {
              ocirun_error_prefix (err, "rootless container with linux.cgroupsPath `%s`", req->cgroups_path);
              goto fail;
            }
          ocirun_debug (req->log, "cgroup: no permission to create `%s` (rootless): running without it", d->abs);
          ocirun_error_free (err);
          dir_rollback (d);
          cg->denied = xrealloc (cg->denied, (cg->denied_len + 1) * sizeof *cg->denied);
          cg->denied[cg->denied_len++] = xstrdup (d->h.controllers);
          dir_clear (d);
          memmove (d, d + 1, (cg->len - i - 1) * sizeof *d);
          cg->len--;
          i--;
          continue;
        }
      if (ret < 0)
        goto fail;
      ret = dir_open (d, false, err);
      if (ret < 0)
        goto fail;
      if (d->h.unified)
        ret = ocirun_cgroup_v2_prepare (d, err);
      else
        ret = ocirun_cgroup_v1_prepare (d, err);
      if (ret < 0)
        goto fail;
    }

  if (cg->len == 0)
    {
      if (ocirun_cgroup_resources_need_controllers (req->resources))
        {
          ret = ocirun_make_error (err, -EPERM,
                                   "rootless needs no limits + no cgroupsPath when no permission is granted for "
                                   "cgroups (no hierarchy lets this uid create `%s`)",
                                   clean);
          goto fail;
        }
      ocirun_debug (req->log, "cgroup: no permission in any hierarchy (rootless): running without cgroups");
      ocirun_cgroup_free (cg);
      return 0;
    }

  ret = ocirun_cgroup_apply_resources (cg, req->resources, true, req->linux_devices, req->linux_devices_len, err);
  if (ret < 0)
    goto fail;

  cg->stored_path = make_stored_path (cg);
  ocirun_debug (req->log, "cgroup: created `%s`", cg->stored_path);
  *out = cg;
  return 0;

fail:
  cgroup_rollback (cg);
  ocirun_cgroup_free (cg);
  return ret;
}

int
ocirun_cgroup_create (const struct ocirun_cgroup_request *req, struct ocirun_cgroup **out, ocirun_error_t *err)
{
  struct ocirun_cgroup_layout layout = { 0 };
  int ret;

  *out = NULL;
  if (req->systemd) /* systemd driver hook */
    return ocirun_cgroup_systemd_create (req, out, err);
  ret = ocirun_cgroup_layout_detect (&layout, err);
  if (ret < 0 && req->rootless && (req->cgroups_path == NULL || *req->cgroups_path == '\0')
      && !ocirun_cgroup_resources_need_controllers (req->resources))
    {
      ocirun_debug (req->log, "cgroup: %s (rootless): running without cgroups", err && *err ? (*err)->msg : "");
      ocirun_error_free (err);
      return 0;
    }
  if (ret < 0)
    return ocirun_error_prefix (err, "cgroup");
  ret = ocirun_cgroup_create_in (&layout, NULL, req, out, err);
  ocirun_cgroup_layout_clear (&layout);
  return ret;
}

/* ------------------------------------------------------------------ load */

int
ocirun_cgroup_load_in (const struct ocirun_cgroup_layout *layout, const char *path, const char *manager,
                       struct ocirun_logger *log, struct ocirun_cgroup **out, ocirun_error_t *err)
{
  struct ocirun_cgroup *cg;
  int ret;

  *out = NULL;
  if (manager && *manager && strcmp (manager, MANAGER_CGROUPFS) != 0)
    {
      if (strcmp (manager, MANAGER_SYSTEMD) == 0)
        return ocirun_make_error (err, ENOTSUP, "systemd cgroup driver: not available yet");
      return ocirun_make_error (err, EINVAL, "unknown cgroup manager `%s`", manager);
    }
  if (path == NULL || *path == '\0')
    return ocirun_make_error (err, EINVAL, "cgroup: empty cgroup path");

  cg = cgroup_new (layout->mode, layout->len, log);
  for (size_t i = 0; i < layout->len; i++)
    {
      const struct ocirun_cgroup_hierarchy *h = &layout->h[i];
      char *p = NULL;

      if (path[0] == '/')
        p = xstrdup (path);
      else
        {
          cleanup_free char *copy = xstrdup (path);
          char *save = NULL;
          for (char *line = strtok_r (copy, "\n", &save); line && p == NULL; line = strtok_r (NULL, "\n", &save))
            {
              char *colon = strchr (line, ':');
              if (colon == NULL)
                continue;
              *colon = '\0';
              if (strcmp (line, h->controllers) == 0 && colon[1] == '/')
                p = xstrdup (colon + 1);
            }
          if (p == NULL)
            continue; /* not a hierarchy the container was created in */
        }
      cgroup_add_dir (cg, h, p);
      ret = dir_open (&cg->dirs[cg->len - 1], true, err);
      if (ret < 0)
        {
          ocirun_cgroup_free (cg);
          return ret;
        }
    }
  if (cg->len == 0)
    {
      ocirun_cgroup_free (cg);
      return ocirun_make_error (err, EINVAL, "cgroup: `%s` names no mounted hierarchy", path);
    }
  cg->stored_path = xstrdup (path);
  *out = cg;
  return 0;
}

int
ocirun_cgroup_load (const char *path, const char *manager, struct ocirun_logger *log, struct ocirun_cgroup **out,
                    ocirun_error_t *err)
{
  struct ocirun_cgroup_layout layout = { 0 };
  int ret;

  *out = NULL;
  if (manager && strcmp (manager, MANAGER_SYSTEMD) == 0) /* systemd driver hook */
    return ocirun_cgroup_systemd_load (path, log, out, err);
  ret = ocirun_cgroup_layout_detect (&layout, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "cgroup");
  ret = ocirun_cgroup_load_in (&layout, path, manager, log, out, err);
  ocirun_cgroup_layout_clear (&layout);
  return ret;
}

/* ------------------------------------------------------------- accessors */

int
ocirun_cgroup_clone_fd (struct ocirun_cgroup *cg)
{
  /* On a hybrid host the v1 hierarchies still need the pid written to
   * them, so CLONE_INTO_CGROUP would only do half the job. */
  if (cg == NULL || cg->mode != OCIRUN_CGROUP_V2 || cg->len == 0)
    return -1;
  return cg->dirs[0].fd;
}

const char *
ocirun_cgroup_path (struct ocirun_cgroup *cg)
{
  return cg ? cg->stored_path : NULL;
}

const char *
ocirun_cgroup_manager (struct ocirun_cgroup *cg)
{
  return cg ? (cg->systemd ? MANAGER_SYSTEMD : MANAGER_CGROUPFS) : NULL;
}

void
ocirun_cgroup_free (struct ocirun_cgroup *cg)
{
  if (cg == NULL)
    return;
  for (size_t i = 0; i < cg->len; i++)
    dir_clear (&cg->dirs[i]);
  free (cg->dirs);
  for (size_t i = 0; i < cg->denied_len; i++)
    free (cg->denied[i]);
  free (cg->denied);
  free (cg->stored_path);
  ocirun_cgroup_systemd_free (cg->systemd); /* systemd driver hook */
  free (cg);
}

/* ------------------------------------------------------------ processes */

int
ocirun_cgroup_enter (struct ocirun_cgroup *cg, pid_t pid, ocirun_error_t *err)
{
  char buf[32];

  snprintf (buf, sizeof buf, "%d", (int)pid);
  for (size_t i = 0; i < cg->len; i++)
    {
      int ret = ocirun_cgroup_write (&cg->dirs[i], "cgroup", "cgroup.procs", buf, NULL, err);
      if (ret < 0)
        return ocirun_error_prefix (err, "move pid %d into cgroup `%s`", (int)pid, cg->dirs[i].abs);
    }
  return 0;
}

static void
pids_add (pid_t **pids, size_t *len, size_t *cap, pid_t pid)
{
  for (size_t i = 0; i < *len; i++)
    if ((*pids)[i] == pid)
      return;
  if (*len == *cap)
    {
      *cap = *cap ? *cap * 2 : 16;
      *pids = xrealloc (*pids, *cap * sizeof **pids);
    }
  (*pids)[(*len)++] = pid;
}

static int
collect_pids (int dirfd, const char *where, int depth, pid_t **pids, size_t *len, size_t *cap, ocirun_error_t *err)
{
  cleanup_free char *buf = NULL;
  cleanup_dir DIR *dir = NULL;
  struct dirent *de;
  int ret, fd;

  if (depth > 64)
    return ocirun_make_error (err, ELOOP, "cgroup `%s`: too deep", where);
  ret = ocirun_read_file_at (dirfd, "cgroup.procs", &buf, NULL, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "cgroup `%s`", where);
  for (char *p = buf; *p;)
    {
      char *end;
      long v = strtol (p, &end, 10);
      if (end == p)
        {
          p++;
          continue;
        }
      if (v > 0)
        pids_add (pids, len, cap, (pid_t)v);
      p = end;
    }

  fd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return ocirun_make_error (err, errno, "open `%s`", where);
  dir = fdopendir (fd);
  if (dir == NULL)
    {
      close (fd);
      return ocirun_make_error (err, errno, "opendir `%s`", where);
    }
  while ((de = readdir (dir)))
    {
      cleanup_close int sub = -1;
      cleanup_free char *subwhere = NULL;
      if (de->d_type != DT_DIR || strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      sub = openat (dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      if (sub < 0)
        {
          if (errno == ENOENT)
            continue; /* removed meanwhile */
          return ocirun_make_error (err, errno, "open `%s/%s`", where, de->d_name);
        }
      xasprintf (&subwhere, "%s/%s", where, de->d_name);
      ret = collect_pids (sub, subwhere, depth + 1, pids, len, cap, err);
      if (ret < 0)
        return ret;
    }
  return 0;
}

int
ocirun_cgroup_dir_pids (struct ocirun_cgroup_dir *d, pid_t **pids, size_t *len, ocirun_error_t *err)
{
  size_t cap = 0;
  int ret;

  *pids = NULL;
  *len = 0;
  if (d == NULL || d->fd < 0)
    return 0; /* the cgroup is gone, and so are its processes */
  ret = collect_pids (d->fd, d->abs, 0, pids, len, &cap, err);
  if (ret < 0)
    {
      free (*pids);
      *pids = NULL;
      *len = 0;
    }
  return ret;
}

/* The hierarchy whose cgroup.procs speaks for the container; runc reads the
 * devices one, which is always there for a container it created. */
static struct ocirun_cgroup_dir *
pids_dir (struct ocirun_cgroup *cg)
{
  static const char *const order[] = { "pids", "devices", "freezer", "memory", NULL };
  struct ocirun_cgroup_dir *d;

  if (cg->mode == OCIRUN_CGROUP_V2)
    return ocirun_cgroup_unified (cg);
  for (size_t i = 0; order[i]; i++)
    if ((d = ocirun_cgroup_find (cg, order[i])) && d->fd >= 0)
      return d;
  for (size_t i = 0; i < cg->len; i++)
    if (cg->dirs[i].fd >= 0)
      return &cg->dirs[i];
  return cg->len ? &cg->dirs[0] : NULL;
}

int
ocirun_cgroup_pids (struct ocirun_cgroup *cg, pid_t **pids, size_t *len, ocirun_error_t *err)
{
  return ocirun_cgroup_dir_pids (pids_dir (cg), pids, len, err);
}

static int
signal_pids (struct ocirun_cgroup_dir *d, int signo, ocirun_error_t *err)
{
  cleanup_free pid_t *pids = NULL;
  size_t len = 0;
  int ret;

  ret = ocirun_cgroup_dir_pids (d, &pids, &len, err);
  if (ret < 0)
    return ret;
  for (size_t i = 0; i < len; i++)
    if (kill (pids[i], signo) < 0 && errno != ESRCH)
      return ocirun_make_error (err, errno, "kill pid %d with signal %d", (int)pids[i], signo);
  return 0;
}

int
ocirun_cgroup_kill (struct ocirun_cgroup *cg, int signo, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d;
  bool was_frozen = false, froze = false;
  int ret;

  if (cg->mode == OCIRUN_CGROUP_V2)
    {
      d = ocirun_cgroup_unified (cg);
      if (d == NULL || d->fd < 0)
        return 0;
      if (signo == SIGKILL)
        {
          ret = ocirun_cgroup_v2_kill_all (d, err);
          if (ret != 0)
            return ret < 0 ? ret : 0;
        }
    }
  else
    {
      d = ocirun_cgroup_find (cg, "freezer");
      if (d == NULL || d->fd < 0)
        return signal_pids (pids_dir (cg), signo, err);
    }

  /* Frozen, nothing can fork between reading the pids and signalling them
   * (runc's signalAllProcesses). A container that was paused stays so. */
  if (ocirun_cgroup_is_frozen (cg, &was_frozen, NULL) < 0)
    was_frozen = false;
  if (!was_frozen)
    {
      cleanup_error ocirun_error_t ferr = NULL;
      if (ocirun_cgroup_freeze (cg, true, &ferr) < 0)
        ocirun_warning (cg->log, "cgroup kill: %s", ferr->msg);
      else
        froze = true;
    }
  ret = signal_pids (d, signo, err);
  /* A frozen task does not die before it is thawed: SIGKILL on a paused
   * container thaws it (runc thaws after every kill --all). */
  if (was_frozen && signo == SIGKILL)
    froze = true;
  if (froze)
    {
      cleanup_error ocirun_error_t ferr = NULL;
      if (ocirun_cgroup_freeze (cg, false, &ferr) < 0)
        {
          if (ret == 0)
            return ocirun_make_error (err, 0, "cgroup kill: thaw: %s", ferr->msg);
          ocirun_warning (cg->log, "cgroup kill: %s", ferr->msg);
        }
    }
  return ret;
}

int
ocirun_cgroup_freeze (struct ocirun_cgroup *cg, bool frozen, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d;

  if (cg->mode == OCIRUN_CGROUP_V2)
    {
      d = ocirun_cgroup_unified (cg);
      if (d == NULL)
        return ocirun_make_error (err, ENOENT, "cannot toggle freezer: no cgroup");
      return ocirun_cgroup_v2_freeze (d, frozen, err);
    }
  d = ocirun_cgroup_find (cg, "freezer");
  if (d == NULL)
    {
      if (!frozen)
        return 0;
      return ocirun_make_error (err, ENOTSUP, "cannot toggle freezer: the freezer controller is not mounted");
    }
  return ocirun_cgroup_v1_freeze (d, frozen, err);
}

int
ocirun_cgroup_is_frozen (struct ocirun_cgroup *cg, bool *frozen, ocirun_error_t *err)
{
  struct ocirun_cgroup_dir *d;

  *frozen = false;
  if (cg->mode == OCIRUN_CGROUP_V2)
    {
      d = ocirun_cgroup_unified (cg);
      return d ? ocirun_cgroup_v2_is_frozen (d, frozen, err) : 0;
    }
  d = ocirun_cgroup_find (cg, "freezer");
  return d ? ocirun_cgroup_v1_is_frozen (d, frozen, err) : 0;
}

int
ocirun_cgroup_update (struct ocirun_cgroup *cg, const oci_resources *resources, oci_device *const *linux_devices,
                      size_t linux_devices_len, ocirun_error_t *err)
{
  if (resources == NULL)
    return 0;
  if (cg->systemd) /* systemd driver hook */
    {
      int ret = ocirun_cgroup_systemd_update (cg, resources, linux_devices, linux_devices_len, err);
      if (ret < 0)
        return ret;
    }
  return ocirun_cgroup_apply_resources (cg, resources, false, linux_devices, linux_devices_len, err);
}

/* ---------------------------------------------------------------- destroy */

/* Removes a cgroup directory and the ones below it (a container with its
 * own cgroup namespace may have made some), deepest first. */
static int
remove_tree (int parentfd, const char *name, const char *where, int depth, ocirun_error_t *err)
{
  cleanup_dir DIR *dir = NULL;
  struct dirent *de;
  int fd, ret;

  if (depth > 64)
    return ocirun_make_error (err, ELOOP, "cgroup `%s`: too deep", where);
  fd = openat (parentfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return 0;
      return ocirun_make_error (err, errno, "open `%s`", where);
    }
  dir = fdopendir (fd);
  if (dir == NULL)
    {
      close (fd);
      return ocirun_make_error (err, errno, "opendir `%s`", where);
    }
  while ((de = readdir (dir)))
    {
      cleanup_free char *sub = NULL;
      if (de->d_type != DT_DIR || strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      xasprintf (&sub, "%s/%s", where, de->d_name);
      ret = remove_tree (dirfd (dir), de->d_name, sub, depth + 1, err);
      if (ret < 0)
        return ret;
    }

  /* The kernel keeps a cgroup busy until its last task has been reaped and
   * released, which can trail the exit by a moment. */
  for (int delay_ms = 10;; delay_ms *= 2)
    {
      struct timespec ts;
      if (unlinkat (parentfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
        return 0;
      if (errno != EBUSY || delay_ms > 1280)
        return ocirun_make_error (err, errno, "rmdir `%s`", where);
      ts.tv_sec = 0;
      ts.tv_nsec = delay_ms * 1000000L;
      nanosleep (&ts, NULL);
    }
}

int
ocirun_cgroup_destroy (struct ocirun_cgroup *cg, ocirun_error_t *err)
{
  int first = 0;

  /* systemd driver hook: systemd removes the scope's cgroup itself. */
  if (cg->systemd && (first = ocirun_cgroup_systemd_stop (cg, err)) < 0)
    return first;

  for (size_t i = 0; i < cg->len; i++)
    {
      struct ocirun_cgroup_dir *d = &cg->dirs[i];
      cleanup_free char *parent = NULL;
      cleanup_close int parentfd = -1;
      char *slash;
      int ret;

      /* Never the hierarchy's root (cgroupsPath "/" joins it). */
      if (strcmp (d->path, "/") == 0 || d->path[0] == '\0')
        continue;
      /* The usual case, an empty cgroup without sub-cgroups, in one
       * syscall; the walk (and its waits) only when that is refused. */
      if (rmdir (d->abs) == 0 || errno == ENOENT)
        {
          if (d->fd >= 0)
            close (d->fd);
          d->fd = -1;
          continue;
        }
      parent = xstrdup (d->abs);
      slash = strrchr (parent, '/');
      if (slash == NULL || slash[1] == '\0')
        continue;
      *slash = '\0';
      parentfd = open (*parent ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (parentfd < 0)
        {
          if (errno == ENOENT)
            continue;
          ret = ocirun_make_error (first ? NULL : err, errno, "open `%s`", parent);
        }
      else
        ret = remove_tree (parentfd, slash + 1, d->abs, 0, first ? NULL : err);
      if (ret < 0 && first == 0)
        first = ret;
      if (ret == 0 && d->fd >= 0)
        {
          close (d->fd);
          d->fd = -1;
        }
    }
  if (first < 0)
    return ocirun_error_prefix (err, "destroy cgroup `%s`", cg->stored_path ? cg->stored_path : "");
  return 0;
}

/* ------------------------------------------------------------ sub-cgroups */

static char *
sub_join (const char *base, const char *sub)
{
  if (strcmp (sub, "/") == 0)
    return xstrdup (base);
  return join_path (base, sub);
}

int
ocirun_cgroup_sub (struct ocirun_cgroup *cg, char *const *specs, size_t n, struct ocirun_cgroup **out,
                   ocirun_error_t *err)
{
  struct ocirun_cgroup *sub;
  int ret;

  *out = NULL;
  sub = cgroup_new (cg->mode, cg->len, cg->log);
  sub->rootless = cg->rootless;
  for (size_t i = 0; i < cg->len; i++)
    {
      struct ocirun_cgroup_dir *d = &cg->dirs[i];
      cleanup_free char *rel = NULL;

      for (size_t k = 0; k < n; k++)
        {
          const char *spec = specs[k], *colon = strchr (spec, ':'), *path = colon ? colon + 1 : spec;
          bool absolute;
          if (colon)
            {
              cleanup_free char *ctrls = NULL;
              xasprintf (&ctrls, "%.*s", (int)(colon - spec), spec);
              if (cg->mode == OCIRUN_CGROUP_V2)
                {
                  ret = ocirun_make_error (
                      err, -EINVAL, "invalid --cgroup argument `%s`: a controller cannot be named on cgroup v2", spec);
                  goto fail;
                }
              if (d->h.unified || !controllers_intersect (ctrls, d->h.controllers))
                continue;
            }
          if (*path == '\0')
            {
              ret = ocirun_make_error (err, -EINVAL, "invalid --cgroup argument `%s`: empty path", spec);
              goto fail;
            }
          free (rel);
          /* Cleaned as if rooted, so that ".." never leaves the container's
           * cgroup. */
          rel = ocirun_cgroup_clean_path (path, &absolute);
        }
      cgroup_add_dir (sub, &d->h, rel ? sub_join (d->path, rel) : xstrdup (d->path));
      ret = dir_open (&sub->dirs[sub->len - 1], false, err);
      if (ret < 0)
        {
          ocirun_error_prefix (err, "exec --cgroup: the sub-cgroup must exist");
          goto fail;
        }
    }
  for (size_t k = 0; k < n; k++)
    {
      const char *colon = strchr (specs[k], ':');
      bool used = colon == NULL;
      for (size_t i = 0; !used && i < cg->len; i++)
        {
          cleanup_free char *ctrls = NULL;
          xasprintf (&ctrls, "%.*s", (int)(colon - specs[k]), specs[k]);
          used = !cg->dirs[i].h.unified && controllers_intersect (ctrls, cg->dirs[i].h.controllers);
        }
      if (!used)
        {
          ret = ocirun_make_error (err, -EINVAL, "invalid --cgroup argument `%s`: no such controller mounted",
                                   specs[k]);
          goto fail;
        }
    }
  sub->stored_path = xstrdup (cg->stored_path ? cg->stored_path : "");
  if (cg->systemd)
    {
      /* The systemd driver places processes through the unit; it needs the
       * sub-cgroup relative to the unit's cgroup (one on v2, where a user
       * manager's units live; v1 hierarchies all got the same path). */
      const char *rel = "";
      for (size_t i = 0; i < sub->len && i < cg->len; i++)
        {
          size_t plen = strlen (cg->dirs[i].path);
          if (strncmp (sub->dirs[i].path, cg->dirs[i].path, plen) == 0 && sub->dirs[i].path[plen] == '/')
            {
              rel = sub->dirs[i].path + plen;
              break;
            }
        }
      sub->systemd = ocirun_systemd_unit_for_sub (cg->systemd, rel);
    }
  *out = sub;
  return 0;

fail:
  ocirun_cgroup_free (sub);
  return ret;
}
