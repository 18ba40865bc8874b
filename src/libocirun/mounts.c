/* The config's mounts, mounted one by one inside the rootfs before
 * pivot_root, the way runc does it. Every mount target is resolved inside
 * the rootfs by fd and the mount goes through /proc/self/fd/N, so a symlink
 * swapped in after the lookup cannot point the mount outside the rootfs. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/magic.h>

#include "mounts.h"
#include "util.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

#define FD_PATH_MAX 32

static const char *
fd_path (char buf[FD_PATH_MAX], int fd)
{
  snprintf (buf, FD_PATH_MAX, "/proc/self/fd/%d", fd);
  return buf;
}

/* ---------------------------------------------------------------- options */

struct flag_option
{
  const char *name;
  bool clear;
  unsigned long flag;
};

static const struct flag_option flag_options[] = {
  { "defaults", false, 0 },
  { "ro", false, MS_RDONLY },
  { "rw", true, MS_RDONLY },
  { "suid", true, MS_NOSUID },
  { "nosuid", false, MS_NOSUID },
  { "dev", true, MS_NODEV },
  { "nodev", false, MS_NODEV },
  { "exec", true, MS_NOEXEC },
  { "noexec", false, MS_NOEXEC },
  { "sync", false, MS_SYNCHRONOUS },
  { "async", true, MS_SYNCHRONOUS },
  { "dirsync", false, MS_DIRSYNC },
  { "remount", false, MS_REMOUNT },
  { "mand", false, MS_MANDLOCK },
  { "nomand", true, MS_MANDLOCK },
  { "atime", true, MS_NOATIME },
  { "noatime", false, MS_NOATIME },
  { "diratime", true, MS_NODIRATIME },
  { "nodiratime", false, MS_NODIRATIME },
  { "bind", false, MS_BIND },
  { "rbind", false, MS_BIND | MS_REC },
  { "relatime", false, MS_RELATIME },
  { "norelatime", true, MS_RELATIME },
  { "strictatime", false, MS_STRICTATIME },
  { "nostrictatime", true, MS_STRICTATIME },
  { "nosymfollow", false, MS_NOSYMFOLLOW },
  { "symfollow", true, MS_NOSYMFOLLOW },
  { "acl", false, MS_POSIXACL },
  { "noacl", true, MS_POSIXACL },
  { "iversion", false, MS_I_VERSION },
  { "noiversion", true, MS_I_VERSION },
  { "lazytime", false, MS_LAZYTIME },
  { "nolazytime", true, MS_LAZYTIME },
  { "silent", false, MS_SILENT },
  { "loud", true, MS_SILENT },
  { NULL, false, 0 },
};

struct propagation_option
{
  const char *name;
  unsigned long flag;
};

static const struct propagation_option propagation_options[] = {
  { "private", MS_PRIVATE },
  { "rprivate", MS_PRIVATE | MS_REC },
  { "shared", MS_SHARED },
  { "rshared", MS_SHARED | MS_REC },
  { "slave", MS_SLAVE },
  { "rslave", MS_SLAVE | MS_REC },
  { "unbindable", MS_UNBINDABLE },
  { "runbindable", MS_UNBINDABLE | MS_REC },
  { NULL, 0 },
};

/* Recursive attributes. The atime ones are an enum in the kernel: setting
 * one means clearing the whole MOUNT_ATTR__ATIME field first. */
struct rec_option
{
  const char *name;
  bool clear;
  uint64_t attr;
};

#define ATIME_MODE ((uint64_t)1 << 63) /* marker: sets the atime field to attr */

static const struct rec_option rec_options[] = {
  { "rro", false, MOUNT_ATTR_RDONLY },
  { "rrw", true, MOUNT_ATTR_RDONLY },
  { "rnosuid", false, MOUNT_ATTR_NOSUID },
  { "rsuid", true, MOUNT_ATTR_NOSUID },
  { "rnodev", false, MOUNT_ATTR_NODEV },
  { "rdev", true, MOUNT_ATTR_NODEV },
  { "rnoexec", false, MOUNT_ATTR_NOEXEC },
  { "rexec", true, MOUNT_ATTR_NOEXEC },
  { "rnodiratime", false, MOUNT_ATTR_NODIRATIME },
  { "rdiratime", true, MOUNT_ATTR_NODIRATIME },
  { "rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW },
  { "rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW },
  { "rnoatime", false, ATIME_MODE | MOUNT_ATTR_NOATIME },
  { "ratime", false, ATIME_MODE | MOUNT_ATTR_RELATIME },
  { "rrelatime", false, ATIME_MODE | MOUNT_ATTR_RELATIME },
  { "rnorelatime", false, ATIME_MODE | MOUNT_ATTR_STRICTATIME },
  { "rstrictatime", false, ATIME_MODE | MOUNT_ATTR_STRICTATIME },
  { "rnostrictatime", false, ATIME_MODE | MOUNT_ATTR_RELATIME },
  { NULL, false, 0 },
};

void
ocirun_mount_options_clear (struct ocirun_mount_options *o)
{
  free (o->data);
  memset (o, 0, sizeof (*o));
}

static void
append_data (char **data, const char *opt)
{
  if (*data == NULL)
    *data = xstrdup (opt);
  else
    {
      size_t a = strlen (*data), b = strlen (opt);
      *data = xrealloc (*data, a + b + 2);
      (*data)[a] = ',';
      memcpy (*data + a + 1, opt, b + 1);
    }
}

int
ocirun_parse_mount_options (char *const *options, size_t n, struct ocirun_mount_options *out, ocirun_error_t *err)
{
  memset (out, 0, sizeof (*out));
  for (size_t i = 0; i < n; i++)
    {
      const char *opt = options[i];
      bool done = false;

      if (opt == NULL)
        break;
      for (const struct flag_option *f = flag_options; f->name && !done; f++)
        if (strcmp (opt, f->name) == 0)
          {
            if (f->clear)
              {
                out->flags &= ~f->flag;
                out->cleared |= f->flag;
              }
            else
              {
                out->flags |= f->flag;
                out->cleared &= ~f->flag;
              }
            done = true;
          }
      for (const struct propagation_option *p = propagation_options; p->name && !done; p++)
        if (strcmp (opt, p->name) == 0)
          {
            if (out->n_propagation == OCIRUN_MAX_PROPAGATION)
              {
                ocirun_mount_options_clear (out);
                return ocirun_make_error (err, EINVAL, "too many propagation options");
              }
            out->propagation[out->n_propagation++] = p->flag;
            done = true;
          }
      for (const struct rec_option *r = rec_options; r->name && !done; r++)
        if (strcmp (opt, r->name) == 0)
          {
            if (r->attr & ATIME_MODE)
              {
                uint64_t v = r->attr & ~ATIME_MODE;
                out->attr_clr |= MOUNT_ATTR__ATIME;
                out->attr_set = (out->attr_set & ~(uint64_t)MOUNT_ATTR__ATIME) | v;
              }
            else if (r->clear)
              {
                out->attr_clr |= r->attr;
                out->attr_set &= ~r->attr;
              }
            else
              {
                out->attr_set |= r->attr;
                out->attr_clr &= ~r->attr;
              }
            done = true;
          }
      if (done)
        continue;
      if (strcmp (opt, "tmpcopyup") == 0)
        out->tmpcopyup = true;
      else if (strcmp (opt, "idmap") == 0)
        out->idmap = true;
      else if (strcmp (opt, "ridmap") == 0)
        out->idmap = out->ridmap = true;
      else
        append_data (&out->data, opt);
    }
  return 0;
}

int
ocirun_parse_propagation (const char *s, unsigned long *flags, ocirun_error_t *err)
{
  *flags = 0;
  if (s == NULL || *s == '\0')
    return 0;
  for (const struct propagation_option *p = propagation_options; p->name; p++)
    if (strcmp (s, p->name) == 0)
      {
        *flags = p->flag;
        return 0;
      }
  return ocirun_make_error (err, EINVAL, "invalid rootfs propagation `%s`", s);
}

bool
ocirun_path_is_dev (const char *p)
{
  while (*p == '/')
    p++;
  if (strncmp (p, "dev", 3) != 0)
    return false;
  p += 3;
  while (*p == '/')
    p++;
  return *p == '\0';
}

bool
ocirun_mount_is_bind (const oci_mount *m)
{
  if (m->type && strcmp (m->type, "bind") == 0)
    return true;
  for (size_t i = 0; i < m->options_len && m->options[i]; i++)
    if (strcmp (m->options[i], "bind") == 0 || strcmp (m->options[i], "rbind") == 0)
      return true;
  return false;
}

/* ------------------------------------------------------------ remounting */

unsigned long
ocirun_locked_mount_flags (const char *path)
{
  struct statvfs st;
  unsigned long flags = 0;

  if (statvfs (path, &st) < 0)
    return 0;
  if (st.f_flag & ST_RDONLY)
    flags |= MS_RDONLY;
  if (st.f_flag & ST_NOSUID)
    flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV)
    flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC)
    flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME)
    flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME)
    flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME)
    flags |= MS_RELATIME;
  return flags;
}

int
ocirun_remount_bind (const char *path, unsigned long flags, const char *what, ocirun_error_t *err)
{
  unsigned long f = (flags & ~(MS_REC | MS_REMOUNT | MS_BIND)) | MS_REMOUNT | MS_BIND;

  if (mount (NULL, path, NULL, f, NULL) == 0)
    return 0;
  if (errno != EPERM)
    return ocirun_make_error (err, errno, "remount `%s`", what);
  /* In a user namespace the flags the mount already had (nosuid, nodev,
   * noexec, atime, ro) are locked: keep them and try again. */
  f |= ocirun_locked_mount_flags (path);
  if (mount (NULL, path, NULL, f, NULL) < 0)
    return ocirun_make_error (err, errno, "remount `%s`", what);
  return 0;
}

/* --------------------------------------------------------------- helpers */

/* Re-resolves the destination after mounting on it: the fd used for the
 * mount points at the directory below, the new one at the new mount. */
static int
reopen_target (struct ocirun_container *c, const char *dest, ocirun_error_t *err)
{
  return ocirun_open_in_root (c->rootfs_fd, dest, O_PATH, 0, err);
}

static int
apply_propagation_and_attrs (struct ocirun_container *c, const char *dest, const struct ocirun_mount_options *o,
                             ocirun_error_t *err)
{
  cleanup_close int fd = -1;
  char buf[FD_PATH_MAX];

  if (o->n_propagation == 0 && o->attr_set == 0 && o->attr_clr == 0)
    return 0;
  fd = reopen_target (c, dest, err);
  if (fd < 0)
    return fd;
  for (size_t i = 0; i < o->n_propagation; i++)
    if (mount (NULL, fd_path (buf, fd), NULL, o->propagation[i], NULL) < 0)
      return ocirun_make_error (err, errno, "set propagation of `%s`", dest);
  if (o->attr_set || o->attr_clr)
    {
      struct mount_attr attr = { .attr_set = o->attr_set, .attr_clr = o->attr_clr };
      if (syscall (SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof (attr)) < 0)
        return ocirun_make_error (err, errno, "set recursive mount attributes of `%s`", dest);
    }
  return 0;
}

/* Mount flags that make a fresh mount (or remount) differ from a plain bind. */
#define BIND_REMOUNT_FLAGS                                                                                             \
  (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK | MS_NOATIME               \
   | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME | MS_NOSYMFOLLOW)

/* runc refuses mounts inside /proc except on a few files lxcfs emulates. */
static int
check_proc_mount (const char *dest, const char *source, ocirun_error_t *err)
{
  static const char *const allowed[] = {
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo",  "/proc/stat",    "/proc/swaps",
    "/proc/uptime",  "/proc/loadavg",   "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
  };
  cleanup_free char *clean = xmalloc0 (strlen (dest) + 2);
  char *w = clean;

  /* Lexical clean: collapse slashes and `.`, apply `..`. */
  for (const char *p = dest; *p;)
    {
      const char *e;
      size_t len;
      while (*p == '/')
        p++;
      if (*p == '\0')
        break;
      e = strchr (p, '/');
      len = e ? (size_t)(e - p) : strlen (p);
      if (len == 1 && p[0] == '.')
        ;
      else if (len == 2 && p[0] == '.' && p[1] == '.')
        {
          while (w > clean && *--w != '/')
            ;
          *w = '\0';
        }
      else
        {
          *w++ = '/';
          memcpy (w, p, len);
          w += len;
          *w = '\0';
        }
      p += len;
    }

  if (strcmp (clean, "/proc") == 0)
    {
      struct statfs sfs;
      if (source == NULL || *source == '\0')
        return 0;
      if (statfs (source, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC)
        return 0;
      return ocirun_make_error (err, 0, "`%s` cannot be mounted because it is not of type proc", dest);
    }
  if (strncmp (clean, "/proc/", 6) != 0)
    return 0;
  for (size_t i = 0; i < sizeof (allowed) / sizeof (allowed[0]); i++)
    if (strcmp (clean, allowed[i]) == 0)
      return 0;
  return ocirun_make_error (err, 0, "`%s` cannot be mounted because it is inside /proc", dest);
}

/* Resolves a mount source: relative paths are relative to the bundle. */
static char *
source_path (struct ocirun_container *c, const char *source)
{
  char *ret = NULL;
  if (source == NULL || source[0] == '/' || c->bundle == NULL)
    return xstrdup (source ? source : "");
  if (xasprintf (&ret, "%s/%s", c->bundle, source) < 0)
    return xstrdup (source);
  return ret;
}

/* ------------------------------------------------------------- idmapping */

static int
write_id_map (pid_t pid, const char *file, oci_id_mapping **maps, size_t n, ocirun_error_t *err)
{
  char path[64];
  cleanup_free char *buf = NULL;
  size_t len = 0;
  cleanup_close int fd = -1;

  for (size_t i = 0; i < n && maps[i]; i++)
    {
      char line[64];
      int l = snprintf (line, sizeof (line), "%u %u %u\n", maps[i]->container_id, maps[i]->host_id, maps[i]->size);
      buf = xrealloc (buf, len + (size_t)l + 1);
      memcpy (buf + len, line, (size_t)l + 1);
      len += (size_t)l;
    }
  snprintf (path, sizeof (path), "/proc/%d/%s", pid, file);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ocirun_write_all (fd, buf ? buf : "", len) < 0)
    return ocirun_make_error (err, errno, "write `%s`", path);
  return 0;
}

/* The pid of `pid` as the mounted /proc numbers it. The init may live in a
 * new pid namespace while /proc is still the host's: a pidfd's fdinfo shows
 * the pid in the namespace of the proc instance read. */
static pid_t
proc_visible_pid (pid_t pid)
{
  cleanup_close int pidfd = (int)syscall (SYS_pidfd_open, pid, 0);
  cleanup_free char *info = NULL;
  char path[64];
  const char *p;

  if (pidfd < 0)
    return pid;
  snprintf (path, sizeof (path), "/proc/self/fdinfo/%d", pidfd);
  if (ocirun_read_file (path, &info, NULL, NULL) < 0)
    return pid;
  p = strstr (info, "\nPid:");
  if (p == NULL)
    return pid;
  long v = strtol (p + 5, NULL, 10);
  return v > 0 ? (pid_t)v : pid;
}

/* A user namespace with the given maps, as an fd: a short-lived child
 * unshares it, we write its maps and keep a reference to the namespace. */
static int
make_userns_fd (oci_id_mapping **uids, size_t nu, oci_id_mapping **gids, size_t ng, ocirun_error_t *err)
{
  int ready[2], done[2];
  pid_t pid, procpid;
  char c = 0, path[64];
  int ret, status;

  if (pipe2 (ready, O_CLOEXEC) < 0)
    return ocirun_make_error (err, errno, "pipe");
  if (pipe2 (done, O_CLOEXEC) < 0)
    {
      close (ready[0]);
      close (ready[1]);
      return ocirun_make_error (err, errno, "pipe");
    }
  pid = fork ();
  if (pid < 0)
    {
      ret = ocirun_make_error (err, errno, "fork");
      goto out;
    }
  if (pid == 0)
    {
      close (ready[0]);
      close (done[1]);
      if (unshare (CLONE_NEWUSER) < 0)
        _exit (1);
      if (write (ready[1], &c, 1) != 1)
        _exit (1);
      (void)!read (done[0], &c, 1);
      _exit (0);
    }
  close (ready[1]);
  ready[1] = -1;
  if (read (ready[0], &c, 1) != 1)
    {
      ret = ocirun_make_error (err, EPERM, "create user namespace for idmapped mount");
      goto reap;
    }
  procpid = proc_visible_pid (pid);
  ret = write_id_map (procpid, "uid_map", uids, nu, err);
  if (ret == 0)
    ret = write_id_map (procpid, "gid_map", gids, ng, err);
  if (ret == 0)
    {
      snprintf (path, sizeof (path), "/proc/%d/ns/user", procpid);
      ret = open (path, O_RDONLY | O_CLOEXEC);
      if (ret < 0)
        ret = ocirun_make_error (err, errno, "open `%s`", path);
    }
reap:
  close (done[1]);
  done[1] = -1;
  TEMP_FAILURE_RETRY_INT (waitpid (pid, &status, 0));
out:
  if (ready[0] >= 0)
    close (ready[0]);
  if (ready[1] >= 0)
    close (ready[1]);
  if (done[0] >= 0)
    close (done[0]);
  if (done[1] >= 0)
    close (done[1]);
  return ret;
}

static int
idmap_userns_fd (struct ocirun_container *c, const oci_mount *m, ocirun_error_t *err)
{
  if (m->uid_mappings_len || m->gid_mappings_len)
    return make_userns_fd (m->uid_mappings, m->uid_mappings_len, m->gid_mappings, m->gid_mappings_len, err);
  if (c->userns)
    {
      /* The init already lives in the container's user namespace. */
      int fd = open ("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        return ocirun_make_error (err, errno, "open `/proc/self/ns/user`");
      return fd;
    }
  return ocirun_make_error (err, EINVAL, "idmapped mount on `%s` without uidMappings/gidMappings or a user namespace",
                            m->destination);
}

bool
ocirun_mount_is_idmap (const oci_mount *m)
{
  for (size_t i = 0; i < m->options_len; i++)
    if (strcmp (m->options[i], "idmap") == 0 || strcmp (m->options[i], "ridmap") == 0)
      return true;
  return false;
}

int
ocirun_idmap_tree (struct ocirun_container *c, const oci_mount *m, int userns_fd, ocirun_error_t *err)
{
  cleanup_free char *src = source_path (c, m->source);
  cleanup_close int tree = -1, userns = -1;
  struct ocirun_mount_options o = { 0 };
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP };
  int ret;

  ret = ocirun_parse_mount_options (m->options, m->options_len, &o, err);
  if (ret < 0)
    return ret;
  tree = (int)syscall (SYS_open_tree, AT_FDCWD, src,
                       OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((o.flags & MS_REC) ? AT_RECURSIVE : 0));
  if (tree < 0)
    {
      ret = ocirun_make_error (err, errno, "mount `%s` on `%s`: open_tree", src, m->destination);
      goto out;
    }
  if (m->uid_mappings_len || m->gid_mappings_len)
    userns = make_userns_fd (m->uid_mappings, m->uid_mappings_len, m->gid_mappings, m->gid_mappings_len, err);
  else
    userns = fcntl (userns_fd, F_DUPFD_CLOEXEC, 3);
  if (userns < 0)
    {
      ret = userns_fd >= 0 && !(m->uid_mappings_len || m->gid_mappings_len)
                ? ocirun_make_error (err, errno, "dup user namespace fd")
                : ocirun_error_prefix (err, "mount `%s` on `%s`", src, m->destination);
      goto out;
    }
  attr.userns_fd = (uint64_t)userns;
  if (syscall (SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (o.ridmap ? AT_RECURSIVE : 0), &attr, sizeof (attr)) < 0)
    {
      ret = ocirun_make_error (err, errno, "mount `%s` on `%s`: idmap", src, m->destination);
      goto out;
    }
  ret = steal_fd (&tree);
out:
  ocirun_mount_options_clear (&o);
  return ret;
}

/* ------------------------------------------------------------ bind mounts */

static int
do_bind_mount (struct ocirun_container *c, const oci_mount *m, const struct ocirun_mount_options *o,
               ocirun_error_t *err)
{
  cleanup_free char *src = source_path (c, m->source);
  cleanup_close int srcfd = -1, target = -1;
  char sbuf[FD_PATH_MAX], tbuf[FD_PATH_MAX];
  struct stat st;
  bool recursive = (o->flags & MS_REC) != 0;
  int ret;

  srcfd = open (src, O_PATH | O_CLOEXEC);
  if (srcfd < 0 || fstat (srcfd, &st) < 0)
    return ocirun_make_error (err, errno, "mount `%s` on `%s`: open source", m->source ? m->source : "",
                              m->destination);
  ret = check_proc_mount (m->destination, src, err);
  if (ret < 0)
    return ret;
  target = ocirun_mkdir_in_root (c->rootfs_fd, m->destination, S_ISDIR (st.st_mode) ? 0755 : 0644,
                                 !S_ISDIR (st.st_mode), err);
  if (target < 0)
    return ocirun_error_prefix (err, "mount `%s` on `%s`", src, m->destination);

  if (o->idmap)
    {
      cleanup_close int tree = -1, userns = -1;
      struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP };

      for (size_t i = 0; c->idmap_trees && i < c->config->mounts_len; i++)
        if (c->config->mounts[i] == m && c->idmap_trees[i] >= 0)
          {
            tree = c->idmap_trees[i];
            c->idmap_trees[i] = -1;
          }
      if (tree < 0)
        {
          tree = (int)syscall (SYS_open_tree, srcfd, "",
                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
          if (tree < 0)
            return ocirun_make_error (err, errno, "mount `%s` on `%s`: open_tree", src, m->destination);
          userns = idmap_userns_fd (c, m, err);
          if (userns < 0)
            return ocirun_error_prefix (err, "mount `%s` on `%s`", src, m->destination);
          attr.userns_fd = (uint64_t)userns;
          if (syscall (SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (o->ridmap ? AT_RECURSIVE : 0), &attr,
                       sizeof (attr))
              < 0)
            return ocirun_make_error (err, errno, "mount `%s` on `%s`: idmap", src, m->destination);
        }
      if (syscall (SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return ocirun_make_error (err, errno, "mount `%s` on `%s`", src, m->destination);
    }
  else if (mount (fd_path (sbuf, srcfd), fd_path (tbuf, target), NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) < 0)
    return ocirun_make_error (err, errno, "mount `%s` on `%s`", src, m->destination);

  if ((o->flags & BIND_REMOUNT_FLAGS) || o->data)
    {
      cleanup_close int newfd = reopen_target (c, m->destination, err);
      if (newfd < 0)
        return ocirun_error_prefix (err, "mount `%s` on `%s`", src, m->destination);
      ret = ocirun_remount_bind (fd_path (tbuf, newfd), o->flags, m->destination, err);
      if (ret < 0)
        return ret;
    }
  return apply_propagation_and_attrs (c, m->destination, o, err);
}

/* ------------------------------------------------------------------ tmpfs */

static int copy_tree (int from, int to, ocirun_error_t *err);

static int
copy_entry (int from, int to, const char *name, ocirun_error_t *err)
{
  struct stat st;

  if (fstatat (from, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return ocirun_make_error (err, errno, "stat `%s`", name);
  if (S_ISDIR (st.st_mode))
    {
      cleanup_close int sfd = -1, dfd = -1;
      if (mkdirat (to, name, st.st_mode & 07777) < 0 && errno != EEXIST)
        return ocirun_make_error (err, errno, "mkdir `%s`", name);
      sfd = openat (from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      dfd = openat (to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sfd < 0 || dfd < 0)
        return ocirun_make_error (err, errno, "open `%s`", name);
      int ret = copy_tree (sfd, dfd, err);
      if (ret < 0)
        return ret;
    }
  else if (S_ISREG (st.st_mode))
    {
      cleanup_close int sfd = openat (from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      cleanup_close int dfd = -1;
      char buf[16384];
      ssize_t r;

      if (sfd < 0)
        return ocirun_make_error (err, errno, "open `%s`", name);
      dfd = openat (to, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
      if (dfd < 0)
        return ocirun_make_error (err, errno, "create `%s`", name);
      while ((r = TEMP_FAILURE_RETRY_INT (read (sfd, buf, sizeof (buf)))) > 0)
        if (ocirun_write_all (dfd, buf, (size_t)r) < 0)
          return ocirun_make_error (err, errno, "write `%s`", name);
      if (r < 0)
        return ocirun_make_error (err, errno, "read `%s`", name);
    }
  else if (S_ISLNK (st.st_mode))
    {
      char target[PATH_MAX];
      ssize_t l = readlinkat (from, name, target, sizeof (target) - 1);
      if (l < 0)
        return ocirun_make_error (err, errno, "readlink `%s`", name);
      target[l] = '\0';
      if (symlinkat (target, to, name) < 0 && errno != EEXIST)
        return ocirun_make_error (err, errno, "symlink `%s`", name);
    }
  else if (mknodat (to, name, st.st_mode, st.st_rdev) < 0 && errno != EEXIST)
    return ocirun_make_error (err, errno, "mknod `%s`", name);

  if (fchownat (to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM && errno != EINVAL)
    return ocirun_make_error (err, errno, "chown `%s`", name);
  if (!S_ISLNK (st.st_mode) && fchmodat (to, name, st.st_mode & 07777, 0) < 0)
    return ocirun_make_error (err, errno, "chmod `%s`", name);
  return 0;
}

static int
copy_tree (int from, int to, ocirun_error_t *err)
{
  int dupfd = fcntl (from, F_DUPFD_CLOEXEC, 0);
  cleanup_dir DIR *d = NULL;
  struct dirent *de;

  if (dupfd < 0)
    return ocirun_make_error (err, errno, "dup");
  d = fdopendir (dupfd);
  if (d == NULL)
    {
      close (dupfd);
      return ocirun_make_error (err, errno, "opendir");
    }
  while ((errno = 0, de = readdir (d)))
    {
      int ret;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      ret = copy_entry (from, to, de->d_name, err);
      if (ret < 0)
        return ret;
    }
  if (errno)
    return ocirun_make_error (err, errno, "readdir");
  return 0;
}

static bool
data_has_option (const char *data, const char *prefix)
{
  size_t l = strlen (prefix);
  for (const char *p = data; p && *p;)
    {
      if (strncmp (p, prefix, l) == 0)
        return true;
      p = strchr (p, ',');
      if (p)
        p++;
    }
  return false;
}

static int
do_tmpfs_mount (struct ocirun_container *c, const oci_mount *m, const struct ocirun_mount_options *o,
                ocirun_error_t *err)
{
  const char *src = m->source && *m->source ? m->source : "tmpfs";
  cleanup_close int target = -1, lower = -1, newfd = -1;
  char tbuf[FD_PATH_MAX];
  struct stat st;
  bool existed;
  unsigned long flags = o->flags;
  int ret;

  /* Whether the directory was already there decides, like runc, if the
   * tmpfs root gets its mode. */
  {
    ocirun_error_t tmp = NULL;
    int fd = ocirun_open_in_root (c->rootfs_fd, m->destination, O_PATH, 0, &tmp);
    existed = fd >= 0;
    if (fd >= 0)
      close (fd);
    ocirun_error_free (&tmp);
  }
  target = ocirun_mkdir_in_root (c->rootfs_fd, m->destination, 0755, false, err);
  if (target < 0)
    return ocirun_error_prefix (err, "mount `%s` on `%s`", src, m->destination);
  if (fstatat (target, "", &st, AT_EMPTY_PATH) < 0)
    return ocirun_make_error (err, errno, "mount `%s` on `%s`: stat", src, m->destination);
  if (o->tmpcopyup)
    {
      /* Kept open across the mount: it still sees the directory below. */
      lower = openat (target, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (lower < 0)
        return ocirun_make_error (err, errno, "mount `%s` on `%s`: open", src, m->destination);
      /* Mounted writable first so the copy can fill it; made ro after. */
      flags &= ~MS_RDONLY;
    }
  /* /dev stays writable until finalize so the devices can be made. */
  if (ocirun_path_is_dev (m->destination))
    flags &= ~MS_RDONLY;
  if (mount (src, fd_path (tbuf, target), "tmpfs", flags & ~(MS_BIND | MS_REC), o->data) < 0)
    return ocirun_make_error (err, errno, "mount `%s` on `%s`", src, m->destination);

  newfd = reopen_target (c, m->destination, err);
  if (newfd < 0)
    return ocirun_error_prefix (err, "mount `%s` on `%s`", src, m->destination);
  if (o->tmpcopyup)
    {
      cleanup_close int dir = openat (newfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dir < 0)
        return ocirun_make_error (err, errno, "mount `%s` on `%s`: open", src, m->destination);
      ret = copy_tree (lower, dir, err);
      if (ret < 0)
        return ocirun_error_prefix (err, "mount `%s` on `%s`: tmpcopyup", src, m->destination);
      if (fchown (dir, st.st_uid, st.st_gid) < 0 && errno != EPERM && errno != EINVAL)
        return ocirun_make_error (err, errno, "mount `%s` on `%s`: chown", src, m->destination);
    }
  if (existed && !data_has_option (o->data, "mode="))
    {
      if (fchmodat (AT_FDCWD, fd_path (tbuf, newfd), st.st_mode & 07777, 0) < 0)
        return ocirun_make_error (err, errno, "mount `%s` on `%s`: chmod", src, m->destination);
    }
  if (o->tmpcopyup && (o->flags & MS_RDONLY))
    {
      ret = ocirun_remount_bind (fd_path (tbuf, newfd), o->flags, m->destination, err);
      if (ret < 0)
        return ret;
    }
  return apply_propagation_and_attrs (c, m->destination, o, err);
}

/* ---------------------------------------------------------------- cgroups */

struct mount_entry
{
  char *root, *mountpoint, *fstype, *source, *super_opts;
};

static void
unescape_mountinfo (char *s)
{
  char *w = s;
  for (char *p = s; *p;)
    {
      if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7')
        {
          *w++ = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
          p += 4;
        }
      else
        *w++ = *p++;
    }
  *w = '\0';
}

/* Splits one /proc/self/mountinfo line in place. */
static bool
parse_mountinfo_line (char *line, struct mount_entry *e)
{
  char *fields[16];
  size_t n = 0;
  char *save = NULL;
  size_t sep = 0;

  for (char *tok = strtok_r (line, " \n", &save); tok && n < 16; tok = strtok_r (NULL, " \n", &save))
    fields[n++] = tok;
  for (size_t i = 6; i < n; i++)
    if (strcmp (fields[i], "-") == 0)
      {
        sep = i;
        break;
      }
  if (sep == 0 || n < sep + 4)
    return false;
  e->root = fields[3];
  e->mountpoint = fields[4];
  e->fstype = fields[sep + 1];
  e->source = fields[sep + 2];
  e->super_opts = fields[sep + 3];
  unescape_mountinfo (e->root);
  unescape_mountinfo (e->mountpoint);
  return true;
}

/* The process's cgroup path for a v1 hierarchy (whose /proc/self/cgroup
 * controller field is one of the hierarchy's options) or for cgroup2 (""). */
static char *
own_cgroup_path (const char *cgroup_file, const struct mount_entry *e)
{
  cleanup_free char *copy = xstrdup (cgroup_file);
  char *save = NULL;

  for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *ctrls = strchr (line, ':');
      char *path;
      if (ctrls == NULL)
        continue;
      ctrls++;
      path = strchr (ctrls, ':');
      if (path == NULL)
        continue;
      *path++ = '\0';
      if (strcmp (e->fstype, "cgroup2") == 0)
        {
          if (*ctrls == '\0')
            return xstrdup (path);
          continue;
        }
      if (*ctrls == '\0')
        continue;
      /* Every controller of the line must be a mount option. */
      bool all = true;
      cleanup_free char *cs = xstrdup (ctrls);
      char *s2 = NULL;
      for (char *ctl = strtok_r (cs, ",", &s2); ctl; ctl = strtok_r (NULL, ",", &s2))
        {
          cleanup_free char *opts = xstrdup (e->super_opts);
          char *s3 = NULL;
          bool found = false;
          for (char *op = strtok_r (opts, ",", &s3); op; op = strtok_r (NULL, ",", &s3))
            if (strcmp (op, ctl) == 0)
              found = true;
          if (!found)
            all = false;
        }
      if (all)
        return xstrdup (path);
    }
  return NULL;
}

static bool
has_namespace (const oci_config *config, const char *type)
{
  if (config->linux == NULL)
    return false;
  for (size_t i = 0; i < config->linux->namespaces_len && config->linux->namespaces[i]; i++)
    if (strcmp (config->linux->namespaces[i]->type, type) == 0)
      return true;
  return false;
}

static int
mount_cgroup_hierarchy (struct ocirun_container *c, const oci_mount *m, const struct ocirun_mount_options *o,
                        const struct mount_entry *e, const char *cgroup_file, bool cgroupns, ocirun_error_t *err)
{
  const char *base = strrchr (e->mountpoint, '/');
  cleanup_free char *dest = NULL;
  cleanup_free char *own = NULL;
  cleanup_close int target = -1;
  char tbuf[FD_PATH_MAX];
  unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (o->flags & MS_RDONLY);
  bool v2 = strcmp (e->fstype, "cgroup2") == 0;
  int ret;

  base = base ? base + 1 : e->mountpoint;
  if (*base == '\0')
    return 0;
  if (xasprintf (&dest, "%s/%s", m->destination, base) < 0)
    return ocirun_make_error (err, ENOMEM, "cgroup mount");
  target = ocirun_mkdir_in_root (c->rootfs_fd, dest, 0755, false, err);
  if (target < 0)
    return ocirun_error_prefix (err, "mount `cgroup` on `%s`", dest);

  if (cgroupns)
    {
      /* Inside a cgroup namespace the hierarchy is mounted fresh and shows
       * the namespace's root. */
      cleanup_free char *data = NULL;
      if (!v2)
        {
          /* Keep only controllers and name=: the superblock's other options
           * (rw, xattr, release_agent...) are not for a new mount. */
          cleanup_free char *opts = xstrdup (e->super_opts);
          char *s = NULL;
          for (char *op = strtok_r (opts, ",", &s); op; op = strtok_r (NULL, ",", &s))
            {
              if (strcmp (op, "rw") == 0 || strcmp (op, "ro") == 0 || strcmp (op, "xattr") == 0
                  || strcmp (op, "noprefix") == 0 || strncmp (op, "release_agent=", 14) == 0
                  || strcmp (op, "clone_children") == 0 || strcmp (op, "cpuset_v2_mode") == 0
                  || strcmp (op, "favordynmods") == 0 || strcmp (op, "nsdelegate") == 0
                  || strcmp (op, "memory_recursiveprot") == 0)
                continue;
              append_data (&data, op);
            }
        }
      if (mount (v2 ? "cgroup2" : "cgroup", fd_path (tbuf, target), e->fstype, flags, data) < 0)
        return ocirun_make_error (err, errno, "mount `%s` on `%s`", e->fstype, dest);
    }
  else
    {
      cleanup_free char *src = NULL;
      const char *rel;
      cleanup_close int newfd = -1;

      own = own_cgroup_path (cgroup_file, e);
      if (own == NULL)
        return 0;
      /* The hierarchy's mount root may itself be a sub-cgroup. */
      rel = own;
      if (strcmp (e->root, "/") != 0 && strncmp (own, e->root, strlen (e->root)) == 0)
        rel = own + strlen (e->root);
      if (xasprintf (&src, "%s%s", e->mountpoint, rel) < 0)
        return ocirun_make_error (err, ENOMEM, "cgroup mount");
      if (mount (src, fd_path (tbuf, target), NULL, MS_BIND | MS_REC, NULL) < 0)
        return ocirun_make_error (err, errno, "mount `%s` on `%s`", src, dest);
      newfd = reopen_target (c, dest, err);
      if (newfd < 0)
        return newfd;
      ret = ocirun_remount_bind (fd_path (tbuf, newfd), flags, dest, err);
      if (ret < 0)
        return ret;
    }

  /* Joined controllers ("cpu,cpuacct") also get one symlink per name. */
  if (!v2 && strchr (base, ','))
    {
      cleanup_free char *names = xstrdup (base);
      cleanup_close int dir = ocirun_open_in_root (c->rootfs_fd, m->destination, O_PATH | O_DIRECTORY, 0, err);
      char *s = NULL;
      if (dir < 0)
        return dir;
      for (char *n = strtok_r (names, ",", &s); n; n = strtok_r (NULL, ",", &s))
        if (symlinkat (base, dir, n) < 0 && errno != EEXIST)
          return ocirun_make_error (err, errno, "symlink `%s/%s`", m->destination, n);
    }
  return 0;
}

static int
do_cgroup_mount (struct ocirun_container *c, const oci_mount *m, const struct ocirun_mount_options *o,
                 ocirun_error_t *err)
{
  bool cgroupns = has_namespace (c->config, "cgroup");
  cleanup_free char *mountinfo = NULL;
  cleanup_free char *cgroup_file = NULL;
  cleanup_close int target = -1, newfd = -1;
  char tbuf[FD_PATH_MAX];
  struct statfs sfs;
  int ret;

  if (statfs ("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
    {
      /* Unified host: one cgroup2 mount; a bind of our own cgroup when the
       * kernel refuses (no cgroup namespace in a user namespace). */
      target = ocirun_mkdir_in_root (c->rootfs_fd, m->destination, 0755, false, err);
      if (target < 0)
        return ocirun_error_prefix (err, "mount `cgroup` on `%s`", m->destination);
      if (mount ("cgroup2", fd_path (tbuf, target), "cgroup2", o->flags & ~(MS_BIND | MS_REC), NULL) == 0)
        return apply_propagation_and_attrs (c, m->destination, o, err);
      if (errno == EBUSY && cgroupns)
        {
          /* The target is the root of a mount of this same cgroup2 tree
           * (the rootless spec rbinds the host's /sys), where the kernel
           * refuses to stack it again; /proc/self/cgroup says "/" in the
           * namespace, so a bind would show the host's whole tree. A tmpfs
           * in between lets the namespace's own view be mounted. */
          if (mount ("tmpfs", fd_path (tbuf, target), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=755")
              < 0)
            return ocirun_make_error (err, errno, "mount `tmpfs` on `%s`", m->destination);
          close (target);
          target = reopen_target (c, m->destination, err);
          if (target < 0)
            return target;
          if (mount ("cgroup2", fd_path (tbuf, target), "cgroup2", o->flags & ~(MS_BIND | MS_REC), NULL) < 0)
            return ocirun_make_error (err, errno, "mount `cgroup2` on `%s`", m->destination);
          return apply_propagation_and_attrs (c, m->destination, o, err);
        }
      if (errno != EPERM && errno != EBUSY)
        return ocirun_make_error (err, errno, "mount `cgroup2` on `%s`", m->destination);

      struct mount_entry e = { .root = (char *)"/",
                               .mountpoint = (char *)"/sys/fs/cgroup",
                               .fstype = (char *)"cgroup2",
                               .source = (char *)"cgroup2",
                               .super_opts = (char *)"" };
      cleanup_free char *own = NULL, *src = NULL;
      ret = ocirun_read_file ("/proc/self/cgroup", &cgroup_file, NULL, err);
      if (ret < 0)
        return ret;
      own = own_cgroup_path (cgroup_file, &e);
      if (xasprintf (&src, "/sys/fs/cgroup%s", own ? own : "/") < 0)
        return ocirun_make_error (err, ENOMEM, "cgroup mount");
      if (mount (src, fd_path (tbuf, target), NULL, MS_BIND | MS_REC, NULL) < 0)
        return ocirun_make_error (err, errno, "mount `%s` on `%s`", src, m->destination);
      newfd = reopen_target (c, m->destination, err);
      if (newfd < 0)
        return newfd;
      ret = ocirun_remount_bind (fd_path (tbuf, newfd), o->flags | MS_NOSUID | MS_NODEV | MS_NOEXEC, m->destination,
                                 err);
      if (ret < 0)
        return ret;
      return apply_propagation_and_attrs (c, m->destination, o, err);
    }

  /* v1 / hybrid: a tmpfs holding one directory per hierarchy, like runc. */
  ret = ocirun_read_file ("/proc/self/mountinfo", &mountinfo, NULL, err);
  if (ret < 0)
    return ret;
  ret = ocirun_read_file ("/proc/self/cgroup", &cgroup_file, NULL, err);
  if (ret < 0)
    return ret;

  target = ocirun_mkdir_in_root (c->rootfs_fd, m->destination, 0755, false, err);
  if (target < 0)
    return ocirun_error_prefix (err, "mount `tmpfs` on `%s`", m->destination);
  if (mount ("tmpfs", fd_path (tbuf, target), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)
    return ocirun_make_error (err, errno, "mount `tmpfs` on `%s`", m->destination);

  char *save = NULL;
  for (char *line = strtok_r (mountinfo, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      struct mount_entry e;
      if (!parse_mountinfo_line (line, &e))
        continue;
      /* runc 1.1.5 leaves a hybrid host's cgroup2 tree out; systemd in a
       * container needs it, so it is bound (or mounted) like the rest. */
      if (strcmp (e.fstype, "cgroup") != 0 && strcmp (e.fstype, "cgroup2") != 0)
        continue;
      if (strncmp (e.mountpoint, "/sys/fs/cgroup/", 15) != 0 || strchr (e.mountpoint + 15, '/'))
        continue;
      ret = mount_cgroup_hierarchy (c, m, o, &e, cgroup_file, cgroupns, err);
      if (ret < 0)
        return ret;
    }

  /* Like runc, the tmpfs itself stays writable even with `ro`: only the
   * hierarchies below are read-only. */
  return apply_propagation_and_attrs (c, m->destination, o, err);
}

int
ocirun_make_parent_mount_private (const char *path, ocirun_error_t *err)
{
  cleanup_free char *mountinfo = NULL;
  cleanup_free char *best = NULL;
  size_t best_len = 0;
  bool best_shared = false;
  char *save = NULL;
  int ret;

  ret = ocirun_read_file ("/proc/self/mountinfo", &mountinfo, NULL, err);
  if (ret < 0)
    return ret;
  for (char *line = strtok_r (mountinfo, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      struct mount_entry e;
      bool shared = strstr (line, " shared:") != NULL;
      char *dash = strstr (line, " - ");
      size_t l;

      if (dash && strstr (line, " shared:") > dash)
        shared = false;
      if (!parse_mountinfo_line (line, &e))
        continue;
      l = strlen (e.mountpoint);
      if (strcmp (e.mountpoint, "/") == 0)
        l = 0;
      else if (strncmp (path, e.mountpoint, l) != 0 || (path[l] != '/' && path[l] != '\0'))
        continue;
      /* Later lines are mounted on top of earlier ones: >= keeps the last. */
      if (best == NULL || l >= best_len)
        {
          free (best);
          best = xstrdup (e.mountpoint);
          best_len = l;
          best_shared = shared;
        }
    }
  if (best && best_shared && mount (NULL, best, NULL, MS_PRIVATE, NULL) < 0)
    return ocirun_make_error (err, errno, "make `%s` private", best);
  return 0;
}

/* -------------------------------------------------------- everything else */

static int
do_generic_mount (struct ocirun_container *c, const oci_mount *m, const struct ocirun_mount_options *o,
                  const char *type, ocirun_error_t *err)
{
  const char *src = m->source && *m->source ? m->source : type;
  cleanup_close int target = -1;
  char tbuf[FD_PATH_MAX];
  int ret;

  if (strcmp (type, "proc") != 0 && strcmp (type, "sysfs") != 0)
    {
      ret = check_proc_mount (m->destination, m->source, err);
      if (ret < 0)
        return ret;
    }
  else
    {
      /* A symlink or file here would let the image choose where proc or
       * sysfs lands (CVE-2019-19921): only a real directory will do. */
      ocirun_error_t tmp = NULL;
      struct stat st;
      int fd = ocirun_open_in_root (c->rootfs_fd, m->destination, O_PATH | O_NOFOLLOW, 0, &tmp);
      ocirun_error_free (&tmp);
      if (fd >= 0)
        {
          bool dir = fstat (fd, &st) == 0 && S_ISDIR (st.st_mode);
          close (fd);
          if (!dir)
            return ocirun_make_error (err, 0,
                                      "mount `%s` on `%s`: filesystem `%s` must be mounted on an ordinary directory",
                                      src, m->destination, type);
        }
    }
  target = ocirun_mkdir_in_root (c->rootfs_fd, m->destination, 0755, false, err);
  if (target < 0)
    return ocirun_error_prefix (err, "mount `%s` on `%s`", src, m->destination);

  if (mount (src, fd_path (tbuf, target), type, ocirun_path_is_dev (m->destination) ? o->flags & ~MS_RDONLY : o->flags,
             o->data)
      < 0)
    {
      int e = errno;
      const char *fallback = NULL;

      /* Without the right namespace the kernel refuses sysfs and mqueue to
       * a user namespace: runc binds the host's instead. */
      if ((e == EPERM || e == EBUSY) && strcmp (type, "sysfs") == 0)
        fallback = "/sys";
      else if ((e == EPERM || e == EBUSY || e == ENODEV) && strcmp (type, "mqueue") == 0)
        fallback = "/dev/mqueue";
      if (fallback == NULL || access (fallback, F_OK) < 0)
        return ocirun_make_error (err, e, "mount `%s` on `%s`", src, m->destination);
      if (mount (fallback, fd_path (tbuf, target), NULL, MS_BIND | MS_REC, NULL) < 0)
        return ocirun_make_error (err, errno, "mount `%s` on `%s`", fallback, m->destination);
      if (o->flags & BIND_REMOUNT_FLAGS)
        {
          cleanup_close int newfd = reopen_target (c, m->destination, err);
          if (newfd < 0)
            return newfd;
          ret = ocirun_remount_bind (fd_path (tbuf, newfd), o->flags, m->destination, err);
          if (ret < 0)
            return ret;
        }
    }
  return apply_propagation_and_attrs (c, m->destination, o, err);
}

int
ocirun_mount_one (struct ocirun_container *c, const oci_mount *m, ocirun_error_t *err)
{
  struct ocirun_mount_options o;
  const char *type = m->type && *m->type ? m->type : "none";
  int ret;

  if (m->destination == NULL || *m->destination == '\0')
    return ocirun_make_error (err, EINVAL, "mount without a destination");
  ret = ocirun_parse_mount_options (m->options, m->options_len, &o, err);
  if (ret < 0)
    return ret;

  if (ocirun_mount_is_bind (m))
    {
      o.flags |= MS_BIND;
      ret = do_bind_mount (c, m, &o, err);
    }
  else if (o.idmap)
    ret = ocirun_make_error (err, EINVAL, "mount `%s` on `%s`: idmap is only supported on bind mounts",
                             m->source ? m->source : type, m->destination);
  else if (strcmp (type, "tmpfs") == 0)
    ret = do_tmpfs_mount (c, m, &o, err);
  else if (strcmp (type, "cgroup") == 0)
    ret = do_cgroup_mount (c, m, &o, err);
  else
    ret = do_generic_mount (c, m, &o, type, err);

  ocirun_mount_options_clear (&o);
  return ret;
}
