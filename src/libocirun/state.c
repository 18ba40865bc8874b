#include "config.h"
#include "state.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATUS_FILE "status.json"
#define EXEC_FIFO "exec.fifo"

const char *
ocirun_status_name (enum ocirun_status s)
{
  switch (s)
    {
    case OCIRUN_STATUS_CREATING:
      return "creating";
    case OCIRUN_STATUS_CREATED:
      return "created";
    case OCIRUN_STATUS_RUNNING:
      return "running";
    case OCIRUN_STATUS_PAUSED:
      return "paused";
    case OCIRUN_STATUS_STOPPED:
      return "stopped";
    }
  return "unknown";
}

/* An error that keeps errno as its status but reads like runc's message,
 * without the strerror() tail that would only repeat it. */
static int
plain_error (ocirun_error_t *err, int errno_, const char *what, const char *id)
{
  ocirun_make_error (err, 0, "container `%s` %s", id, what);
  if (err && *err)
    (*err)->status = errno_;
  return -errno_;
}

/* The id becomes a directory name under ROOT: refuse anything that would
 * resolve elsewhere, whatever the caller validated already. */
static int
check_id (const char *id, ocirun_error_t *err)
{
  if (id == NULL || id[0] == '\0' || strcmp (id, ".") == 0 || strcmp (id, "..") == 0 || strchr (id, '/') != NULL)
    return ocirun_make_error (err, EINVAL, "invalid container id `%s`", id ? id : "");
  return 0;
}

static int
open_root (const char *root, ocirun_error_t *err)
{
  int fd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return ocirun_make_error (err, errno, "open state root `%s`", root);
  return fd;
}

static int
lock_fd (int fd, int op, const char *id, ocirun_error_t *err)
{
  if (TEMP_FAILURE_RETRY_INT (flock (fd, op)) < 0)
    return ocirun_make_error (err, errno, "lock state of container `%s`", id);
  return 0;
}

/* Empties the directory dirfd (recursively, by fd only). The state directory
 * holds only files and the fifo; depth bounds the recursion all the same. */
static int
empty_dir_at (int dirfd, const char *what, int depth, ocirun_error_t *err)
{
  cleanup_dir DIR *d = NULL;
  struct dirent *de;
  int fd;

  fd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return ocirun_make_error (err, errno, "open `%s`", what);
  d = fdopendir (fd);
  if (d == NULL)
    {
      int e = errno;
      close (fd);
      return ocirun_make_error (err, e, "opendir `%s`", what);
    }

  for (;;)
    {
      errno = 0;
      de = readdir (d);
      if (de == NULL)
        {
          if (errno != 0)
            return ocirun_make_error (err, errno, "readdir `%s`", what);
          break;
        }
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;

      if (unlinkat (dirfd, de->d_name, 0) == 0 || errno == ENOENT)
        continue;
      if (errno == EISDIR || errno == EPERM)
        {
          cleanup_close int sub = -1;
          int ret;

          if (depth >= 8)
            return ocirun_make_error (err, ELOOP, "remove `%s/%s`", what, de->d_name);
          sub = openat (dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0)
            return ocirun_make_error (err, errno, "remove `%s/%s`", what, de->d_name);
          ret = empty_dir_at (sub, de->d_name, depth + 1, err);
          if (ret < 0)
            return ocirun_error_prefix (err, "remove `%s`", what);
          if (unlinkat (dirfd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            return ocirun_make_error (err, errno, "remove `%s/%s`", what, de->d_name);
          continue;
        }
      return ocirun_make_error (err, errno, "remove `%s/%s`", what, de->d_name);
    }
  return 0;
}

static int
remove_at (int rootfd, const char *id, ocirun_error_t *err)
{
  cleanup_close int dfd = openat (rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int ret;

  if (dfd < 0)
    {
      if (errno == ENOENT)
        return plain_error (err, ENOENT, "does not exist", id);
      return ocirun_make_error (err, errno, "open state of container `%s`", id);
    }
  ret = empty_dir_at (dfd, id, 0, err);
  if (ret < 0)
    return ret;
  if (unlinkat (rootfd, id, AT_REMOVEDIR) < 0)
    return ocirun_make_error (err, errno, "remove state directory of container `%s`", id);
  return 0;
}

/* A directory under the id without status.json whose lock nobody holds was
 * left by a create that died before writing its state: the creator holds
 * the lock from reserve until status.json exists. */
static bool
status_missing (int dirfd)
{
  struct stat sb;
  return fstatat (dirfd, STATUS_FILE, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
}

static bool
is_abandoned (int dirfd)
{
  struct stat sb;

  if (fstat (dirfd, &sb) < 0 || sb.st_nlink == 0)
    return false;
  return status_missing (dirfd);
}

/* Removes ROOT/ID when it is an abandoned reservation; true when it did. */
static bool
reap_abandoned (int rootfd, const char *id)
{
  cleanup_close int dfd = openat (rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_error ocirun_error_t ignored = NULL;

  if (dfd < 0)
    return false;
  if (flock (dfd, LOCK_EX | LOCK_NB) < 0 || !is_abandoned (dfd))
    return false;
  if (empty_dir_at (dfd, id, 0, &ignored) < 0)
    return false;
  return unlinkat (rootfd, id, AT_REMOVEDIR) == 0;
}

/* The directory is created under a temporary name, locked, then renamed in
 * place, so ROOT/ID never exists unlocked without status.json: that is what
 * lets reap_abandoned tell a dead create from a live one. */
static int
reserve_by_rename (int rootfd, const char *id, ocirun_error_t *err)
{
  char tmp[64];
  cleanup_close int dfd = -1;
  int ret;

  for (unsigned attempt = 0;; attempt++)
    {
      struct timespec ts;

      clock_gettime (CLOCK_MONOTONIC, &ts);
      snprintf (tmp, sizeof tmp, ".new-%d-%lx", (int)getpid (), (unsigned long)ts.tv_nsec ^ attempt);
      if (mkdirat (rootfd, tmp, 0700) == 0)
        break;
      if (errno != EEXIST || attempt >= 16)
        return ocirun_make_error (err, errno, "create state directory for container `%s`", id);
    }

  dfd = openat (rootfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    {
      ret = ocirun_make_error (err, errno, "open state directory for container `%s`", id);
      unlinkat (rootfd, tmp, AT_REMOVEDIR);
      return ret;
    }
  ret = lock_fd (dfd, LOCK_EX, id, err);
  if (ret < 0)
    {
      unlinkat (rootfd, tmp, AT_REMOVEDIR);
      return ret;
    }

  for (int attempt = 0;; attempt++)
    {
      if (renameat2 (rootfd, tmp, rootfd, id, RENAME_NOREPLACE) == 0)
        return steal_fd (&dfd);
      ret = errno;
      if ((ret == EEXIST || ret == ENOTEMPTY) && attempt == 0 && reap_abandoned (rootfd, id))
        continue;
      break;
    }
  unlinkat (rootfd, tmp, AT_REMOVEDIR);
  if (ret == EEXIST || ret == ENOTEMPTY)
    return plain_error (err, EEXIST, "already exists", id);
  if (ret == EINVAL || ret == ENOSYS)
    return 1; /* no RENAME_NOREPLACE here: the caller falls back */
  return ocirun_make_error (err, ret, "create state directory for container `%s`", id);
}

int
ocirun_state_reserve (const char *root, const char *id, ocirun_error_t *err)
{
  cleanup_close int rootfd = -1;
  cleanup_close int dfd = -1;
  int ret;

  ret = check_id (id, err);
  if (ret < 0)
    return ret;
  ret = ocirun_mkdir_p (root, 0700, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "create state root `%s`", root);
  rootfd = open_root (root, err);
  if (rootfd < 0)
    return rootfd;

  ret = reserve_by_rename (rootfd, id, err);
  if (ret != 1)
    return ret;

  /* Filesystems without RENAME_NOREPLACE: a plain exclusive mkdir, with a
   * short window where the directory exists before it is locked. */
  if (mkdirat (rootfd, id, 0700) < 0)
    {
      if (errno == EEXIST)
        return plain_error (err, EEXIST, "already exists", id);
      return ocirun_make_error (err, errno, "create state directory for container `%s`", id);
    }
  dfd = openat (rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return ocirun_make_error (err, errno, "open state directory for container `%s`", id);
  ret = lock_fd (dfd, LOCK_EX, id, err);
  if (ret < 0)
    return ret;
  return steal_fd (&dfd);
}

int
ocirun_state_open (const char *root, const char *id, bool exclusive, ocirun_error_t *err)
{
  cleanup_close int rootfd = -1;
  struct stat sb;
  int ret;

  ret = check_id (id, err);
  if (ret < 0)
    return ret;
  rootfd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    {
      if (errno == ENOENT)
        return plain_error (err, ENOENT, "does not exist", id);
      return ocirun_make_error (err, errno, "open state root `%s`", root);
    }
  return ocirun_state_open_at (rootfd, id, exclusive, &sb, err);
}

int
ocirun_state_open_at (int rootfd, const char *id, bool exclusive, struct stat *sb_out, ocirun_error_t *err)
{
  cleanup_close int dfd = -1;
  struct stat sb;
  int ret;

  ret = check_id (id, err);
  if (ret < 0)
    return ret;
  dfd = openat (rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    {
      if (errno == ENOENT)
        return plain_error (err, ENOENT, "does not exist", id);
      return ocirun_make_error (err, errno, "open state of container `%s`", id);
    }
  ret = lock_fd (dfd, exclusive ? LOCK_EX : LOCK_SH, id, err);
  if (ret < 0)
    return ret;

  /* Whoever held the lock before us may have deleted the container. */
  if (fstat (dfd, &sb) < 0)
    return ocirun_make_error (err, errno, "stat state of container `%s`", id);
  if (sb.st_nlink == 0)
    return plain_error (err, ENOENT, "does not exist", id);
  *sb_out = sb;

  if (status_missing (dfd))
    {
      /* Holding the lock proves the create that made it is gone; with the
       * exclusive lock we may clean up after it. */
      if (exclusive)
        {
          cleanup_error ocirun_error_t ignored = NULL;
          if (empty_dir_at (dfd, id, 0, &ignored) == 0)
            unlinkat (rootfd, id, AT_REMOVEDIR);
        }
      return plain_error (err, ENOENT, "does not exist (its create did not complete)", id);
    }
  return steal_fd (&dfd);
}

int
ocirun_state_write (int dirfd, const oci_container_status *st, ocirun_error_t *err)
{
  cleanup_free char *json = NULL;
  size_t len = 0;
  int ret;

  json = oci_container_status_to_json (st, 0, &len);
  if (json == NULL)
    return ocirun_make_error (err, ENOMEM, "serialise container status");
  ret = ocirun_write_file_atomic_at (dirfd, STATUS_FILE, json, len, 0600, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "write container status");
  return 0;
}

int
ocirun_state_read (int dirfd, oci_container_status **st, ocirun_error_t *err)
{
  cleanup_free char *data = NULL;
  ocispec_errors errs = { 0 };
  size_t len = 0;
  int ret;

  *st = NULL;
  ret = ocirun_read_file_at (dirfd, STATUS_FILE, &data, &len, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "read container status");
  *st = oci_container_status_parse_data (data, len, &errs);
  if (*st == NULL)
    {
      ret = ocirun_make_error (err, EINVAL, "parse `%s`: %s", STATUS_FILE,
                               errs.len > 0 && errs.msgs[0] ? errs.msgs[0] : "invalid JSON");
      ocispec_errors_free (&errs);
      return ret;
    }
  ocispec_errors_free (&errs);
  return 0;
}

int
ocirun_state_remove (const char *root, const char *id, ocirun_error_t *err)
{
  cleanup_close int rootfd = -1;
  int ret;

  ret = check_id (id, err);
  if (ret < 0)
    return ret;
  rootfd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    {
      if (errno == ENOENT)
        return plain_error (err, ENOENT, "does not exist", id);
      return ocirun_make_error (err, errno, "open state root `%s`", root);
    }
  return remove_at (rootfd, id, err);
}

/* Reads the state letter and start time (fields 3 and 22) of /proc/PID/stat.
 * comm (field 2) may hold spaces and parentheses: fields are counted from the
 * last ')'. Returns false when the process is gone or the file is garbled. */
static bool
read_proc_stat (pid_t pid, char *state, uint64_t *start_time)
{
  char path[64], buf[1024];
  cleanup_close int fd = -1;
  ssize_t n;
  char *p, *end;

  if (pid <= 0)
    return false;
  snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  n = ocirun_read_all (fd, buf, sizeof buf - 1);
  if (n <= 0)
    return false;
  buf[n] = '\0';

  p = strrchr (buf, ')');
  if (p == NULL || p[1] != ' ')
    return false;
  p += 2;
  *state = *p;
  /* p is at field 3; skip to field 22. */
  for (int field = 3; field < 22; field++)
    {
      p = strchr (p, ' ');
      if (p == NULL)
        return false;
      p++;
    }
  errno = 0;
  *start_time = strtoull (p, &end, 10);
  if (errno != 0 || end == p || (*end != ' ' && *end != '\n' && *end != '\0'))
    return false;
  return true;
}

uint64_t
ocirun_pid_start_time (pid_t pid)
{
  uint64_t start = 0;
  char state;

  if (!read_proc_stat (pid, &state, &start))
    return 0;
  return start;
}

bool
ocirun_pid_alive (pid_t pid, uint64_t start_time)
{
  uint64_t start = 0;
  char state = 0;

  return read_proc_stat (pid, &state, &start) && start != 0 && start == start_time && state != 'Z' && state != 'X'
         && state != 'x';
}

enum ocirun_status
ocirun_state_status (int dirfd, const oci_container_status *st, bool frozen)
{
  uint64_t start = 0;
  char pstate = 0;

  if (st == NULL || st->pid <= 0)
    return OCIRUN_STATUS_STOPPED;
  if (!read_proc_stat (st->pid, &pstate, &start) || start == 0 || start != st->pid_start_time)
    return OCIRUN_STATUS_STOPPED;
  /* An exited init that its parent has not reaped yet is stopped too. */
  if (pstate == 'Z' || pstate == 'X' || pstate == 'x')
    return OCIRUN_STATUS_STOPPED;
  if (faccessat (dirfd, EXEC_FIFO, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    return OCIRUN_STATUS_CREATED;
  if (frozen)
    return OCIRUN_STATUS_PAUSED;
  return OCIRUN_STATUS_RUNNING;
}

char *
ocirun_format_rfc3339 (const struct timespec *ts)
{
  char date[64], frac[16] = "";
  struct tm tm;
  time_t secs = ts->tv_sec;
  char *out = NULL;

  if (gmtime_r (&secs, &tm) == NULL)
    return NULL;
  if (strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
    return NULL;
  /* Go's RFC3339Nano drops trailing zeros of the fraction, and the dot
   * with them when nothing is left. */
  if (ts->tv_nsec > 0 && ts->tv_nsec < 1000000000L)
    {
      size_t n;
      snprintf (frac, sizeof frac, ".%09ld", (long)ts->tv_nsec);
      n = strlen (frac);
      while (n > 1 && frac[n - 1] == '0')
        frac[--n] = '\0';
    }
  xasprintf (&out, "%s%sZ", date, frac);
  return out;
}

char *
ocirun_now_rfc3339 (void)
{
  struct timespec ts;

  if (clock_gettime (CLOCK_REALTIME, &ts) < 0)
    return NULL;
  return ocirun_format_rfc3339 (&ts);
}
