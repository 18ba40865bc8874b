/* Unit tests of the rootfs room: mount option parsing, path resolution that
 * must stay inside the rootfs, and (as root) a whole prepare + finalize in a
 * private mount namespace with a busybox rootfs. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/magic.h>

#include "mounts.h"
#include "setup.h"
#include "unit.h"
#include "util.h"

#define OPTS(...) ((char *const[]){ __VA_ARGS__ }), (sizeof ((char *const[]){ __VA_ARGS__ }) / sizeof (char *))

static void
test_options (void)
{
  struct ocirun_mount_options o;
  ocirun_error_t err = NULL;
  unsigned long prop;

  CHECK (ocirun_parse_mount_options (OPTS ("ro", "nosuid", "nodev", "noexec", "rbind", "rprivate"), &o, &err) == 0);
  CHECK (o.flags == (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_BIND | MS_REC));
  CHECK (o.n_propagation == 1 && o.propagation[0] == (MS_PRIVATE | MS_REC));
  CHECK (o.data == NULL);
  CHECK (o.attr_set == 0 && o.attr_clr == 0);
  ocirun_mount_options_clear (&o);

  /* Later options win; unknown ones become data, in order. */
  CHECK (ocirun_parse_mount_options (OPTS ("ro", "mode=755", "rw", "size=65536k", "nosuid", "suid"), &o, &err) == 0);
  CHECK (o.flags == 0);
  CHECK ((o.cleared & (MS_RDONLY | MS_NOSUID)) == (MS_RDONLY | MS_NOSUID));
  CHECK_STREQ (o.data, "mode=755,size=65536k");
  ocirun_mount_options_clear (&o);

  CHECK (ocirun_parse_mount_options (OPTS ("newinstance", "ptmxmode=0666", "gid=5", "noatime", "strictatime", "sync",
                                           "dirsync", "mand", "relatime", "remount"),
                                     &o, &err)
         == 0);
  CHECK_STREQ (o.data, "newinstance,ptmxmode=0666,gid=5");
  CHECK (o.flags
         == (MS_NOATIME | MS_STRICTATIME | MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK | MS_RELATIME | MS_REMOUNT));
  ocirun_mount_options_clear (&o);

  CHECK (
      ocirun_parse_mount_options (OPTS ("acl", "iversion", "lazytime", "silent", "nosymfollow", "diratime"), &o, &err)
      == 0);
  CHECK (o.flags == (MS_POSIXACL | MS_I_VERSION | MS_LAZYTIME | MS_SILENT | MS_NOSYMFOLLOW) && o.data == NULL);
  ocirun_mount_options_clear (&o);
  CHECK (ocirun_parse_mount_options (OPTS ("acl", "noacl", "lazytime", "nolazytime", "silent", "loud", "symfollow"), &o,
                                     &err)
         == 0);
  CHECK (o.flags == 0 && o.data == NULL);
  ocirun_mount_options_clear (&o);

  CHECK (ocirun_parse_mount_options (
             OPTS ("shared", "rslave", "unbindable", "runbindable", "private", "rshared", "slave"), &o, &err)
         == 0);
  CHECK (o.n_propagation == 7);
  CHECK (o.propagation[0] == MS_SHARED && o.propagation[1] == (MS_SLAVE | MS_REC));
  CHECK (o.propagation[2] == MS_UNBINDABLE && o.propagation[3] == (MS_UNBINDABLE | MS_REC));
  CHECK (o.propagation[4] == MS_PRIVATE && o.propagation[5] == (MS_SHARED | MS_REC) && o.propagation[6] == MS_SLAVE);
  ocirun_mount_options_clear (&o);

  /* Recursive attributes. */
  CHECK (ocirun_parse_mount_options (OPTS ("rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"), &o, &err) == 0);
  CHECK (o.attr_set
         == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOATIME));
  CHECK (o.attr_clr == MOUNT_ATTR__ATIME);
  CHECK (o.flags == 0 && o.data == NULL);
  ocirun_mount_options_clear (&o);

  CHECK (ocirun_parse_mount_options (OPTS ("rro", "rrw", "rsuid", "rexec", "rdev", "rstrictatime"), &o, &err) == 0);
  CHECK (o.attr_set == MOUNT_ATTR_STRICTATIME);
  CHECK (o.attr_clr
         == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV | MOUNT_ATTR__ATIME));
  ocirun_mount_options_clear (&o);

  CHECK (ocirun_parse_mount_options (OPTS ("rnodiratime", "rnoatime", "rrelatime"), &o, &err) == 0);
  CHECK (o.attr_set == (MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_RELATIME));
  ocirun_mount_options_clear (&o);

  CHECK (ocirun_parse_mount_options (OPTS ("tmpcopyup", "ridmap"), &o, &err) == 0);
  CHECK (o.tmpcopyup && o.idmap && o.ridmap && o.data == NULL);
  ocirun_mount_options_clear (&o);
  CHECK (ocirun_parse_mount_options (OPTS ("idmap"), &o, &err) == 0);
  CHECK (o.idmap && !o.ridmap);
  ocirun_mount_options_clear (&o);

  CHECK (ocirun_parse_propagation ("rslave", &prop, &err) == 0 && prop == (MS_SLAVE | MS_REC));
  CHECK (ocirun_parse_propagation ("shared", &prop, &err) == 0 && prop == MS_SHARED);
  CHECK (ocirun_parse_propagation ("", &prop, &err) == 0 && prop == 0);
  CHECK (ocirun_parse_propagation (NULL, &prop, &err) == 0 && prop == 0);
  CHECK (ocirun_parse_propagation ("bogus", &prop, &err) == -EINVAL);
  CHECK (err && strstr (err->msg, "bogus") != NULL);
  ocirun_error_free (&err);

  CHECK (ocirun_path_is_dev ("/dev") && ocirun_path_is_dev ("//dev/") && !ocirun_path_is_dev ("/dev/pts")
         && !ocirun_path_is_dev ("/devices"));
}

/* ------------------------------------------------------------ path tests */

/* snprintf through a function, so -Wformat-truncation leaves test paths alone. */
static void pfmt (char *buf, size_t size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static void
pfmt (char *buf, size_t size, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, size, fmt, ap);
  va_end (ap);
}

static int
rm_entry (const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove (p);
  return 0;
}

static void
rm_rf (const char *p)
{
  nftw (p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
write_str (const char *path, const char *s)
{
  FILE *f = fopen (path, "w");
  if (f)
    {
      fputs (s, f);
      fclose (f);
    }
}

static char *
read_fd_str (int fd)
{
  static char buf[256];
  ssize_t n = pread (fd, buf, sizeof (buf) - 1, 0);
  buf[n < 0 ? 0 : n] = '\0';
  return buf;
}

typedef int (*open_fn) (int, const char *, int, mode_t, ocirun_error_t *);

static void
check_open (open_fn fn, int root, const char *path, const char *want)
{
  ocirun_error_t err = NULL;
  int fd = fn (root, path, O_RDONLY, 0, &err);
  CHECK (fd >= 0);
  if (fd < 0)
    {
      fprintf (stderr, "  open %s: %s\n", path, err ? err->msg : "?");
      ocirun_error_free (&err);
      return;
    }
  if (strcmp (read_fd_str (fd), want) != 0)
    fprintf (stderr, "  open %s read `%s`\n", path, read_fd_str (fd));
  CHECK_STREQ (read_fd_str (fd), want);
  close (fd);
}

static void
test_paths (void)
{
  char tmpl[] = "/tmp/ocirun-test-rootfs-XXXXXX";
  char *base = mkdtemp (tmpl);
  char root[PATH_MAX], p[PATH_MAX], escape[64];
  ocirun_error_t err = NULL;
  int rootfd, fd;
  struct stat st;
  open_fn fns[] = { ocirun_open_in_root, ocirun_open_in_root_walk };

  CHECK (base != NULL);
  if (base == NULL)
    return;
  /* The rootfs is two levels down so `../..` from it would reach /tmp. */
  pfmt (root, sizeof (root), "%s/a/root", base);
  pfmt (p, sizeof (p), "%s/a", base);
  mkdir (p, 0755);
  mkdir (root, 0755);
  pfmt (p, sizeof (p), "%s/etc", root);
  mkdir (p, 0755);
  pfmt (p, sizeof (p), "%s/etc/hostname", root);
  write_str (p, "inside");
  pfmt (p, sizeof (p), "%s/a/etc", base);
  mkdir (p, 0755);
  pfmt (p, sizeof (p), "%s/a/etc/hostname", base);
  write_str (p, "outside");
  pfmt (p, sizeof (p), "%s/dir", root);
  mkdir (p, 0755);

#define LINK(target, name)                                                                                             \
  do                                                                                                                   \
    {                                                                                                                  \
      pfmt (p, sizeof (p), "%s/%s", root, name);                                                                       \
      CHECK (symlink (target, p) == 0);                                                                                \
    }                                                                                                                  \
  while (0)
  LINK ("/etc", "abs");
  LINK ("../../..", "up");
  LINK ("../etc", "dir/rel");
  LINK ("../../etc", "dir/rel2");
  LINK ("loop2", "loop1");
  LINK ("loop1", "loop2");
  LINK ("/etc/hostname", "hostlink");
  LINK ("/proc/self/root/etc", "magic");
  pfmt (escape, sizeof (escape), "/ocirun-escape-%d", (int)getpid ());
  LINK (escape, "dangling");
  LINK ("../../../../..", "dir/deepup");

  rootfd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  CHECK (rootfd >= 0);

  for (size_t i = 0; i < 2; i++)
    {
      open_fn fn = fns[i];
      check_open (fn, rootfd, "/etc/hostname", "inside");
      check_open (fn, rootfd, "etc/hostname", "inside");
      check_open (fn, rootfd, "/abs/hostname", "inside");
      check_open (fn, rootfd, "/up/etc/hostname", "inside");
      check_open (fn, rootfd, "/../../../etc/hostname", "inside");
      check_open (fn, rootfd, "/dir/rel/hostname", "inside");
      check_open (fn, rootfd, "/dir/rel2/hostname", "inside");
      check_open (fn, rootfd, "/dir/deepup/etc/hostname", "inside");
      check_open (fn, rootfd, "/hostlink", "inside");
      check_open (fn, rootfd, "/dir/../dir/./rel/../etc//hostname", "inside");

      fd = fn (rootfd, "/loop1/x", O_RDONLY, 0, &err);
      CHECK (fd == -ELOOP);
      ocirun_error_free (&err);
      fd = fn (rootfd, "/missing/x", O_RDONLY, 0, &err);
      CHECK (fd == -ENOENT);
      ocirun_error_free (&err);
      fd = fn (rootfd, "/etc/hostname/x", O_RDONLY, 0, &err);
      CHECK (fd == -ENOTDIR);
      ocirun_error_free (&err);
      /* O_NOFOLLOW on a final symlink: not followed. */
      fd = fn (rootfd, "/hostlink", O_RDONLY | O_NOFOLLOW, 0, &err);
      CHECK (fd == -ELOOP);
      ocirun_error_free (&err);
      fd = fn (rootfd, "/hostlink", O_PATH | O_NOFOLLOW, 0, &err);
      CHECK (fd >= 0 && fstat (fd, &st) == 0 && S_ISLNK (st.st_mode));
      if (fd >= 0)
        close (fd);
      ocirun_error_free (&err);
    }
  /* Magic links never resolve through openat2, and the walk treats
   * /proc/self/root as a path inside the rootfs (there is no /proc there). */
  fd = ocirun_open_in_root (rootfd, "/magic/hostname", O_RDONLY, 0, &err);
  CHECK (fd < 0);
  ocirun_error_free (&err);
  fd = ocirun_open_in_root_walk (rootfd, "/magic/hostname", O_RDONLY, 0, &err);
  CHECK (fd == -ENOENT);
  ocirun_error_free (&err);

  /* mkdir: everything created lands inside the rootfs. */
  fd = ocirun_mkdir_in_root (rootfd, "/up/newdir/sub", 0755, false, &err);
  CHECK (fd >= 0);
  if (fd >= 0)
    close (fd);
  pfmt (p, sizeof (p), "%s/newdir/sub", root);
  CHECK (stat (p, &st) == 0 && S_ISDIR (st.st_mode));
  pfmt (p, sizeof (p), "%s/newdir", base);
  CHECK (access (p, F_OK) < 0);

  fd = ocirun_mkdir_in_root (rootfd, "/dangling/deeper", 0700, false, &err);
  CHECK (fd >= 0);
  if (fd >= 0)
    close (fd);
  pfmt (p, sizeof (p), "%s%s/deeper", root, escape);
  CHECK (stat (p, &st) == 0 && S_ISDIR (st.st_mode) && (st.st_mode & 07777) == 0700);
  CHECK (access (escape, F_OK) < 0);
  if (access (escape, F_OK) == 0)
    rm_rf (escape);

  fd = ocirun_mkdir_in_root (rootfd, "/abs/newfile", 0644, true, &err);
  CHECK (fd >= 0);
  if (fd >= 0)
    close (fd);
  pfmt (p, sizeof (p), "%s/etc/newfile", root);
  CHECK (stat (p, &st) == 0 && S_ISREG (st.st_mode) && st.st_size == 0);
  CHECK (access ("/etc/newfile", F_OK) < 0 || st.st_ino != 0);

  /* Existing file kept as is; a file in the way of a directory is an error. */
  fd = ocirun_mkdir_in_root (rootfd, "/etc/hostname", 0644, true, &err);
  CHECK (fd >= 0);
  if (fd >= 0)
    close (fd);
  fd = ocirun_mkdir_in_root (rootfd, "/etc/hostname/sub", 0755, false, &err);
  CHECK (fd == -ENOTDIR);
  ocirun_error_free (&err);
  fd = ocirun_mkdir_in_root (rootfd, "/etc/hostname", 0755, false, &err);
  CHECK (fd == -ENOTDIR);
  ocirun_error_free (&err);
  fd = ocirun_mkdir_in_root (rootfd, "/loop1/x", 0755, false, &err);
  CHECK (fd == -ELOOP);
  ocirun_error_free (&err);
  fd = ocirun_mkdir_in_root (rootfd, "/", 0755, false, &err);
  CHECK (fd >= 0 && fstat (fd, &st) == 0 && S_ISDIR (st.st_mode));
  if (fd >= 0)
    close (fd);

  close (rootfd);
  rm_rf (base);
}

/* ------------------------------------------ prepare + finalize (as root) */

static const char config_fmt[]
    = "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
      "\"mounts\":["
      "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
      "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"nosuid\",\"strictatime\","
      "\"mode=755\",\"size=65536k\"]},"
      "{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\","
      "\"newinstance\",\"ptmxmode=0666\",\"mode=0620\",\"gid=5\"]},"
      "{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\",\"options\":[\"nosuid\",\"noexec\","
      "\"nodev\",\"mode=1777\",\"size=65536k\"]},"
      "{\"destination\":\"/dev/mqueue\",\"type\":\"mqueue\",\"source\":\"mqueue\",\"options\":[\"nosuid\","
      "\"noexec\",\"nodev\"]},"
      "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"nosuid\",\"noexec\","
      "\"nodev\",\"ro\"]},"
      "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\",\"options\":[\"nosuid\","
      "\"noexec\",\"nodev\",\"relatime\",\"ro\"]},"
      "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"%s\",\"options\":[\"rbind\",\"ro\"]},"
      "{\"destination\":\"/hostfile\",\"source\":\"%s\",\"options\":[\"bind\",\"nosuid\"]},"
      "{\"destination\":\"/evil/mnt\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"},"
      "{\"destination\":\"/copy\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"tmpcopyup\",\"ro\"]},"
      "{\"destination\":\"/recro\",\"type\":\"bind\",\"source\":\"%s\",\"options\":[\"rbind\",\"rro\","
      "\"rnosuid\"]}%s"
      "],"
      "\"linux\":{\"namespaces\":[{\"type\":\"mount\"}%s],"
      "\"devices\":[%s{\"path\":\"/dev/fifo\",\"type\":\"p\"}],"
      "\"maskedPaths\":[\"/proc/kcore\",\"/proc/timer_list\",\"/proc/acpi\",\"/masked-dir\",\"/masked-file\",\"/does/"
      "not/exist\"],"
      "\"readonlyPaths\":[\"/proc/sys\",\"/rw-dir\",\"/nope\"]}}";

/* In a user namespace devices are bind mounts of the host's: a device the
 * host lacks cannot be made there, so that one is only tested as root. */
static const char mynull_json[] = "{\"path\":\"/dev/sub/mynull\",\"type\":\"c\",\"major\":1,\"minor\":3,"
                                  "\"fileMode\":384,\"uid\":12,\"gid\":34},";
/* An idmapped bind mount (root mode only: the kernel wants CAP_SYS_ADMIN
 * over the source's superblock). */
static const char idmap_json[] = ",{\"destination\":\"/idmapped\",\"type\":\"bind\",\"source\":\"data\","
                                 "\"options\":[\"rbind\",\"idmap\"],"
                                 "\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":10}],"
                                 "\"gidMappings\":[{\"containerID\":0,\"hostID\":2000,\"size\":10}]}";

static int
child_checks (bool userns)
{
  char *mi = NULL;
  struct stat st;
  struct statvfs sv;
  struct statfs sf;
  char buf[64];
  int fd;

  CHECK (ocirun_read_file ("/proc/self/mountinfo", &mi, NULL, NULL) == 0);
  if (mi)
    {
      CHECK (strstr (mi, " /proc rw,") && strstr (mi, " - proc proc "));
      CHECK (strstr (mi, " /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755") != NULL);
      CHECK (strstr (mi, " /dev/pts rw,nosuid,noexec")
             && strstr (mi, "- devpts devpts rw,gid=5,mode=620,ptmxmode=666"));
      CHECK (strstr (mi, " /dev/mqueue rw,nosuid,nodev,noexec") != NULL);
      CHECK (strstr (mi, " /sys ro,nosuid,nodev,noexec") != NULL);
      CHECK (strstr (mi, " /sys/fs/cgroup rw,nosuid,nodev,noexec") != NULL);
      CHECK (strstr (mi, " /sys/fs/cgroup/memory ro,nosuid,nodev,noexec") != NULL);
      CHECK (strstr (mi, " /sys/fs/cgroup/systemd ro,nosuid,nodev,noexec") != NULL);
      CHECK (access ("/sys/fs/cgroup/unified", F_OK) < 0
             || strstr (mi, " /sys/fs/cgroup/unified ro,nosuid,nodev,noexec") != NULL);
      /* In a cgroup namespace the hierarchy's root is the namespace's. */
      CHECK (!userns || strstr (mi, " / /sys/fs/cgroup/memory ro,") != NULL);
      if (getenv ("TEST_ROOTFS_DUMP"))
        fprintf (stderr, "%s", mi);
      CHECK (strstr (mi, " /data ro,") != NULL);
      CHECK (strstr (mi, " /hostfile rw,nosuid") != NULL);
      CHECK (strstr (mi, " /proc/sys ro,") != NULL);
      CHECK (strstr (mi, " /masked-dir ro,") != NULL);
      CHECK (strstr (mi, " / ro,") != NULL);
      /* The old root is gone: one mount of the host's root filesystem
       * remains, the rootfs itself, and it is `/`. */
      CHECK (strstr (mi, " / / ") == NULL);
      if (unit_failures)
        fprintf (stderr, "%s", mi);
      free (mi);
    }

  CHECK (stat ("/dev/null", &st) == 0 && S_ISCHR (st.st_mode) && major (st.st_rdev) == 1 && minor (st.st_rdev) == 3);
  CHECK ((st.st_mode & 0777) == 0666);
  CHECK (stat ("/dev/tty", &st) == 0 && S_ISCHR (st.st_mode) && st.st_rdev == makedev (5, 0));
  CHECK (stat ("/dev/urandom", &st) == 0 && st.st_rdev == makedev (1, 9));
  CHECK (userns
         || (stat ("/dev/sub/mynull", &st) == 0 && S_ISCHR (st.st_mode) && (st.st_mode & 0777) == 0600
             && st.st_uid == 12 && st.st_gid == 34));
  CHECK (stat ("/dev/fifo", &st) == 0 && S_ISFIFO (st.st_mode));
  CHECK (readlink ("/dev/ptmx", buf, sizeof (buf)) == 8 && memcmp (buf, "pts/ptmx", 8) == 0);
  CHECK (readlink ("/dev/fd", buf, sizeof (buf)) == 13 && memcmp (buf, "/proc/self/fd", 13) == 0);
  CHECK (readlink ("/dev/stderr", buf, sizeof (buf)) == 15 && memcmp (buf, "/proc/self/fd/2", 15) == 0);
  /* /dev/core only where the kernel has a /proc/kcore (masked below). */
  CHECK ((lstat ("/dev/core", &st) == 0 && S_ISLNK (st.st_mode)) == (access ("/proc/kcore", F_OK) == 0));

  /* Masked paths read empty. */
  fd = open ("/masked-file", O_RDONLY);
  CHECK (fd >= 0 && read (fd, buf, sizeof (buf)) == 0);
  if (fd >= 0)
    close (fd);
  CHECK (access ("/masked-dir/secret", F_OK) < 0 && errno == ENOENT);
  fd = open ("/proc/timer_list", O_RDONLY);
  CHECK (fd >= 0 && read (fd, buf, sizeof (buf)) == 0);
  if (fd >= 0)
    close (fd);
  CHECK (stat ("/proc/timer_list", &st) == 0 && S_ISCHR (st.st_mode) && st.st_rdev == makedev (1, 3));
  CHECK (statfs ("/proc/acpi", &sf) == 0 && sf.f_type == TMPFS_MAGIC);

  /* Read-only paths and root. */
  fd = open ("/proc/sys/kernel/hostname", O_WRONLY);
  CHECK (fd < 0 && errno == EROFS);
  CHECK (mkdir ("/rw-dir/x", 0755) < 0 && errno == EROFS);
  CHECK (mkdir ("/newdir", 0755) < 0 && errno == EROFS);
  CHECK (mkdir ("/data/x", 0755) < 0 && errno == EROFS);
  CHECK (statvfs ("/recro/sub", &sv) == 0 && (sv.f_flag & ST_RDONLY) && (sv.f_flag & ST_NOSUID));
  CHECK (mkdir ("/dev/shm/x", 0755) == 0);

  /* tmpcopyup: the content below is visible, on a read-only tmpfs. */
  fd = open ("/copy/file", O_RDONLY);
  CHECK (fd >= 0 && read (fd, buf, sizeof (buf)) == 4 && memcmp (buf, "copy", 4) == 0);
  if (fd >= 0)
    close (fd);
  CHECK (statfs ("/copy", &sf) == 0 && sf.f_type == TMPFS_MAGIC);
  CHECK (stat ("/copy/sub/link", &st) < 0 && lstat ("/copy/sub/link", &st) == 0 && S_ISLNK (st.st_mode));
  CHECK (mkdir ("/copy/x", 0755) < 0 && errno == EROFS);

  /* /evil -> /tmp/...: the tmpfs went inside the rootfs. */
  CHECK (statfs ("/evil/mnt", &sf) == 0 && sf.f_type == TMPFS_MAGIC);

  CHECK (userns || (stat ("/idmapped/sub", &st) == 0 && st.st_uid == 1000 && st.st_gid == 2000));
  CHECK (getcwd (buf, sizeof (buf)) && strcmp (buf, "/") == 0);
  CHECK (access ("/bin/busybox", X_OK) == 0);
  return unit_failures ? 1 : 0;
}

static void
mkdirs (const char *base, const char *rel)
{
  char p[PATH_MAX];
  pfmt (p, sizeof (p), "%s/%s", base, rel);
  ocirun_mkdir_p (p, 0755, NULL);
}

static int
copy_file (const char *from, const char *to)
{
  char *data = NULL;
  size_t len = 0;
  int fd, ret = -1;
  if (ocirun_read_file (from, &data, &len, NULL) < 0)
    return -1;
  fd = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  if (fd >= 0 && ocirun_write_all (fd, data, len) == (ssize_t)len)
    ret = 0;
  if (fd >= 0)
    close (fd);
  free (data);
  return ret;
}

/* Runs prepare + finalize + checks. With `userns`, in a fresh user namespace
 * mapping 0-65535 to the same host ids (so the host's root-owned files stay
 * usable) and a cgroup namespace (so the cgroup hierarchies are mounted, not
 * bound). Returns the exit code to leave with. */
static int
run_container (const char *json, const char *base, const char *rootfs, const char *evil, dev_t evil_dev, bool userns,
               bool no_pivot)
{
  ocispec_errors errs = { 0 };
  struct ocirun_container c
      = { .id = "test", .bundle = base, .rootfs = rootfs, .rootfs_fd = -1, .userns = userns, .no_pivot = no_pivot };
  ocirun_error_t err = NULL;
  struct stat st;

  c.config = oci_config_parse_data (json, strlen (json), &errs);
  if (c.config == NULL)
    {
      for (size_t i = 0; i < errs.len; i++)
        fprintf (stderr, "config: %s\n", errs.msgs[i]);
      return 2;
    }
  if (ocirun_rootfs_prepare (&c, &err) < 0)
    {
      fprintf (stderr, "prepare: %s\n", err->msg);
      return 4;
    }
  /* Before pivot_root the host tree is still there: the symlinked
   * destination must not have been mounted on the host directory. */
  if (stat (evil, &st) < 0 || st.st_dev != evil_dev)
    {
      fprintf (stderr, "tmpfs escaped to %s\n", evil);
      return 5;
    }
  if (ocirun_rootfs_finalize (&c, &err) < 0)
    {
      fprintf (stderr, "finalize: %s\n", err->msg);
      return 6;
    }
  return child_checks (userns);
}

static int
write_maps (pid_t pid)
{
  char p[64];
  int ret = 0;
  const char *files[] = { "uid_map", "gid_map" };
  for (int i = 0; i < 2; i++)
    {
      int fd;
      pfmt (p, sizeof (p), "/proc/%d/%s", (int)pid, files[i]);
      fd = open (p, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write (fd, "0 0 65536\n", 10) != 10)
        ret = -1;
      if (fd >= 0)
        close (fd);
    }
  return ret;
}

static void
test_prepare_finalize (bool userns, bool no_pivot)
{
  char tmpl[] = "/tmp/ocirun-test-rootfs-XXXXXX";
  char *base = mkdtemp (tmpl);
  char rootfs[PATH_MAX], data[PATH_MAX], hostfile[PATH_MAX], evil[PATH_MAX], p[PATH_MAX];
  char *json = NULL;
  struct stat before, after;
  int sync[2], ready[2];
  pid_t pid;
  int status;

  CHECK (base != NULL);
  if (base == NULL || pipe (ready) < 0)
    return;
  pfmt (rootfs, sizeof (rootfs), "%s/rootfs", base);
  pfmt (data, sizeof (data), "%s/data", base);
  pfmt (hostfile, sizeof (hostfile), "%s/hostfile", base);
  pfmt (evil, sizeof (evil), "%s/evil-target", base);
  mkdirs (base, "rootfs/bin");
  mkdirs (base, "rootfs/masked-dir");
  mkdirs (base, "rootfs/rw-dir");
  mkdirs (base, "rootfs/copy/sub");
  mkdirs (base, "data/sub");
  mkdirs (base, "evil-target");
  pfmt (p, sizeof (p), "%s/rootfs/masked-dir/secret", base);
  write_str (p, "secret");
  pfmt (p, sizeof (p), "%s/rootfs/masked-file", base);
  write_str (p, "secret");
  pfmt (p, sizeof (p), "%s/rootfs/copy/file", base);
  write_str (p, "copy");
  pfmt (p, sizeof (p), "%s/rootfs/copy/sub/link", base);
  CHECK (symlink ("/nowhere", p) == 0);
  pfmt (p, sizeof (p), "%s/rootfs/evil", base);
  CHECK (symlink (evil, p) == 0);
  write_str (hostfile, "host");
  pfmt (p, sizeof (p), "%s/rootfs/bin/busybox", base);
  CHECK (copy_file ("/bin/busybox", p) == 0);
  CHECK (xasprintf (&json, config_fmt, data, hostfile, data, userns ? "" : idmap_json,
                    userns ? ",{\"type\":\"cgroup\"}" : "", userns ? "" : mynull_json)
         > 0);
  CHECK (stat (evil, &before) == 0);

  if (pipe (sync) < 0)
    return;
  pid = fork ();
  if (pid == 0)
    {
      char ch;
      pid_t inner;
      int st;

      close (sync[1]);
      if (!userns)
        {
          if (unshare (CLONE_NEWNS) < 0)
            _exit (3);
          _exit (run_container (json, base, rootfs, evil, before.st_dev, false, no_pivot));
        }
      /* The parent writes our maps, then proc needs a pid namespace of
       * this user namespace: the work happens in a grandchild. */
      if (unshare (CLONE_NEWUSER) < 0 || write (ready[1], "x", 1) != 1 || read (sync[0], &ch, 1) != 1)
        _exit (3);
      if (unshare (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWCGROUP) < 0)
        _exit (3);
      inner = fork ();
      if (inner == 0)
        _exit (run_container (json, base, rootfs, evil, before.st_dev, true, no_pivot));
      if (inner < 0 || waitpid (inner, &st, 0) != inner)
        _exit (3);
      _exit (WIFEXITED (st) ? WEXITSTATUS (st) : 7);
    }
  close (sync[0]);
  if (userns)
    {
      char ch;
      CHECK (read (ready[0], &ch, 1) == 1);
      CHECK (write_maps (pid) == 0);
    }
  CHECK (write (sync[1], "x", 1) == 1);
  close (sync[1]);
  CHECK (pid > 0);
  CHECK (waitpid (pid, &status, 0) == pid);
  CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  if (!WIFEXITED (status) || WEXITSTATUS (status))
    fprintf (stderr, "  child exit status %d\n", WIFEXITED (status) ? WEXITSTATUS (status) : -1);
  /* Nothing leaked to our namespace. */
  CHECK (stat (evil, &after) == 0 && after.st_dev == before.st_dev);
  pfmt (p, sizeof (p), "%s/rootfs%s/mnt", base, evil);
  CHECK (stat (p, &after) == 0 && S_ISDIR (after.st_mode));
  pfmt (p, sizeof (p), "%s/mnt", evil);
  CHECK (access (p, F_OK) < 0);
  free (json);
  rm_rf (base);
}

/* A failing mount names the source and the container path. */
static void
test_mount_error (void)
{
  char tmpl[] = "/tmp/ocirun-test-rootfs-XXXXXX";
  char *base = mkdtemp (tmpl);
  char rootfs[PATH_MAX];
  const char *json = "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},\"mounts\":["
                     "{\"destination\":\"/x\",\"type\":\"nosuchfs\",\"source\":\"weird\"}]}";
  const char *json2 = "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},\"mounts\":["
                      "{\"destination\":\"/proc/foo\",\"type\":\"bind\",\"source\":\"/tmp\"}]}";
  int pipefd[2];
  char msg[512] = "";
  pid_t pid;
  int status;
  ssize_t n;

  CHECK (base != NULL);
  if (base == NULL || pipe (pipefd) < 0)
    return;
  pfmt (rootfs, sizeof (rootfs), "%s/rootfs", base);
  mkdir (rootfs, 0755);
  pid = fork ();
  if (pid == 0)
    {
      const char *js[] = { json, json2 };
      close (pipefd[0]);
      if (unshare (CLONE_NEWNS) < 0)
        _exit (3);
      for (int i = 0; i < 2; i++)
        {
          ocispec_errors errs = { 0 };
          struct ocirun_container c = { .id = "test", .bundle = base, .rootfs = rootfs, .rootfs_fd = -1 };
          ocirun_error_t err = NULL;
          c.config = oci_config_parse_data (js[i], strlen (js[i]), &errs);
          if (c.config == NULL)
            _exit (10 + i);
          if (ocirun_rootfs_prepare (&c, &err) == 0)
            _exit (20 + i);
          dprintf (pipefd[1], "%s\n", err->msg);
          close (c.rootfs_fd);
        }
      _exit (0);
    }
  close (pipefd[1]);
  for (size_t len = 0; len < sizeof (msg) - 1 && (n = read (pipefd[0], msg + len, sizeof (msg) - 1 - len)) > 0;)
    len += (size_t)n;
  close (pipefd[0]);
  CHECK (waitpid (pid, &status, 0) == pid && WIFEXITED (status) && WEXITSTATUS (status) == 0);
  if (!WIFEXITED (status) || WEXITSTATUS (status))
    fprintf (stderr, "  child exit status %d\n", WIFEXITED (status) ? WEXITSTATUS (status) : -1);
  CHECK (strstr (msg, "mount `weird` on `/x`: No such device\n") != NULL);
  CHECK (strstr (msg, "`/proc/foo` cannot be mounted because it is inside /proc") != NULL);
  if (unit_failures)
    fprintf (stderr, "  messages: %s", msg);
  rm_rf (base);
}

int
main (void)
{
  test_options ();
  test_paths ();
  if (geteuid () == 0 && access ("/bin/busybox", X_OK) == 0)
    {
      test_prepare_finalize (false, false);
      test_prepare_finalize (true, false);
      test_prepare_finalize (false, true);
      test_mount_error ();
    }
  else
    printf ("skipping prepare/finalize tests (need root and /bin/busybox)\n");
  UNIT_DONE ();
}
