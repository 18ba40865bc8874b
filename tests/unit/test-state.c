#include "config.h"
#include "state.h"
#include "unit.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ocirun-test-state-XXXXXX";
static char *root;

static int
count_entries (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *de;
  int n = 0;

  if (d == NULL)
    return -1;
  while ((de = readdir (d)))
    if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
      n++;
  closedir (d);
  return n;
}

static bool
exists_in_root (const char *id)
{
  cleanup_free char *p = NULL;
  xasprintf (&p, "%s/%s", root, id);
  return access (p, F_OK) == 0;
}

static oci_container_status *
make_status (const char *id, pid_t pid, uint64_t start)
{
  oci_container_status *st = xmalloc0 (sizeof *st);

  st->id = xstrdup (id);
  st->pid = pid;
  st->has_pid = true;
  st->pid_start_time = start;
  st->has_pid_start_time = true;
  st->bundle = xstrdup ("/bundle");
  st->rootfs = xstrdup ("/bundle/rootfs");
  st->created = ocirun_now_rfc3339 ();
  st->owner = xstrdup ("");
  st->cgroup_path = xstrdup ("/sys/fs/cgroup/x");
  return st;
}

/* A child that holds still until killed; its pid and start time are real. */
static pid_t
spawn_sleeper (void)
{
  pid_t pid = fork ();
  if (pid == 0)
    {
      for (;;)
        pause ();
    }
  return pid;
}

static void
test_reserve (void)
{
  ocirun_error_t err = NULL;
  struct stat sb;
  int fd, fd2;

  fd = ocirun_state_reserve (root, "a", &err);
  CHECK (fd >= 0);
  CHECK (stat (root, &sb) == 0 && (sb.st_mode & 07777) == 0700);

  fd2 = ocirun_state_reserve (root, "a", &err);
  if (fd2 != -EEXIST)
    fprintf (stderr, "  reserve twice: %d %s\n", fd2, err ? err->msg : "");
  CHECK (fd2 == -EEXIST);
  CHECK (err && strcmp (err->msg, "container `a` already exists") == 0);
  CHECK (err && err->status == EEXIST);
  ocirun_error_free (&err);

  /* The reservation is locked: another process cannot take the lock. */
  {
    pid_t pid = fork ();
    if (pid == 0)
      {
        cleanup_free char *p = NULL;
        int dfd;
        xasprintf (&p, "%s/a", root);
        dfd = open (p, O_RDONLY | O_DIRECTORY);
        _exit (dfd >= 0 && flock (dfd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK ? 0 : 1);
      }
    int status = -1;
    waitpid (pid, &status, 0);
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  }

  /* Write + read round trip. */
  {
    oci_container_status *st = make_status ("a", getpid (), ocirun_pid_start_time (getpid ()));
    oci_container_status *back = NULL;
    int ret;

    ret = ocirun_state_write (fd, st, &err);
    CHECK (ret == 0);
    if (err)
      fprintf (stderr, "  %s\n", err->msg);
    ret = ocirun_state_read (fd, &back, &err);
    CHECK (ret == 0);
    if (back)
      {
        CHECK_STREQ (back->id, "a");
        CHECK (back->pid == getpid ());
        CHECK (back->pid_start_time == st->pid_start_time);
        CHECK_STREQ (back->bundle, "/bundle");
        CHECK_STREQ (back->rootfs, "/bundle/rootfs");
        CHECK_STREQ (back->created, st->created);
        CHECK_STREQ (back->cgroup_path, "/sys/fs/cgroup/x");
        oci_container_status_free (back);
      }
    oci_container_status_free (st);
    /* The temp file of the atomic write is gone. */
    {
      cleanup_free char *p = NULL;
      xasprintf (&p, "%s/a", root);
      CHECK (count_entries (p) == 1);
    }
  }
  close (fd);

  /* Now anyone may open it. */
  fd = ocirun_state_open (root, "a", false, &err);
  CHECK (fd >= 0);
  fd2 = ocirun_state_open (root, "a", false, &err);
  CHECK (fd2 >= 0); /* shared locks coexist */
  close (fd2);
  close (fd);
  fd = ocirun_state_open (root, "a", true, &err);
  CHECK (fd >= 0);
  close (fd);

  fd = ocirun_state_open (root, "nope", true, &err);
  CHECK (fd == -ENOENT);
  CHECK (err && strcmp (err->msg, "container `nope` does not exist") == 0);
  ocirun_error_free (&err);

  fd = ocirun_state_reserve (root, "../evil", &err);
  CHECK (fd == -EINVAL);
  ocirun_error_free (&err);
  fd = ocirun_state_open (root, "..", false, &err);
  CHECK (fd == -EINVAL);
  ocirun_error_free (&err);
}

static void
test_abandoned (void)
{
  ocirun_error_t err = NULL;
  int fd;

  /* A create that died between reserve and status.json. */
  fd = ocirun_state_reserve (root, "b", &err);
  CHECK (fd >= 0);
  close (fd);
  CHECK (exists_in_root ("b"));

  fd = ocirun_state_open (root, "b", false, &err);
  CHECK (fd == -ENOENT);
  CHECK (err && strstr (err->msg, "container `b` does not exist") != NULL);
  ocirun_error_free (&err);
  CHECK (exists_in_root ("b")); /* a shared open leaves it */

  fd = ocirun_state_open (root, "b", true, &err);
  CHECK (fd == -ENOENT);
  ocirun_error_free (&err);
  CHECK (!exists_in_root ("b"));

  /* reserve takes over an abandoned reservation by itself... */
  fd = ocirun_state_reserve (root, "c", &err);
  CHECK (fd >= 0);
  close (fd);
  fd = ocirun_state_reserve (root, "c", &err);
  CHECK (fd >= 0);
  if (err)
    fprintf (stderr, "  %s\n", err->msg);
  ocirun_error_free (&err);

  /* ...but not one whose create is still running (lock held). */
  {
    int fd2 = ocirun_state_reserve (root, "c", &err);
    CHECK (fd2 == -EEXIST);
    ocirun_error_free (&err);
  }
  close (fd);
  CHECK (ocirun_state_remove (root, "c", &err) == 0);
  CHECK (!exists_in_root ("c"));
}

static void
test_status (void)
{
  ocirun_error_t err = NULL;
  oci_container_status *st;
  cleanup_free char *dir = NULL;
  int dfd;
  pid_t child;

  xasprintf (&dir, "%s/a", root);
  dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK (dfd >= 0);

  /* Live child: running; frozen: paused; exec.fifo: created. */
  child = spawn_sleeper ();
  st = make_status ("a", child, ocirun_pid_start_time (child));
  CHECK (st->pid_start_time > 0);
  CHECK (ocirun_state_status (dfd, st, false) == OCIRUN_STATUS_RUNNING);
  CHECK (ocirun_state_status (dfd, st, true) == OCIRUN_STATUS_PAUSED);
  CHECK (mkfifoat (dfd, "exec.fifo", 0600) == 0);
  CHECK (ocirun_state_status (dfd, st, false) == OCIRUN_STATUS_CREATED);
  CHECK (unlinkat (dfd, "exec.fifo", 0) == 0);
  CHECK (ocirun_state_status (dfd, st, false) == OCIRUN_STATUS_RUNNING);

  /* Same pid, other start time: the pid was reused. */
  st->pid_start_time++;
  CHECK (ocirun_state_status (dfd, st, false) == OCIRUN_STATUS_STOPPED);
  st->pid_start_time--;

  /* Exited but not reaped (zombie): stopped. */
  kill (child, SIGKILL);
  {
    siginfo_t si;
    CHECK (waitid (P_PID, child, &si, WEXITED | WNOWAIT) == 0);
  }
  CHECK (ocirun_state_status (dfd, st, false) == OCIRUN_STATUS_STOPPED);
  /* Gone: stopped. */
  waitpid (child, NULL, 0);
  CHECK (ocirun_pid_start_time (child) == 0);
  CHECK (ocirun_state_status (dfd, st, false) == OCIRUN_STATUS_STOPPED);

  st->pid = 0;
  CHECK (ocirun_state_status (dfd, st, false) == OCIRUN_STATUS_STOPPED);
  CHECK (ocirun_state_status (dfd, NULL, false) == OCIRUN_STATUS_STOPPED);
  oci_container_status_free (st);
  close (dfd);

  CHECK_STREQ (ocirun_status_name (OCIRUN_STATUS_CREATING), "creating");
  CHECK_STREQ (ocirun_status_name (OCIRUN_STATUS_CREATED), "created");
  CHECK_STREQ (ocirun_status_name (OCIRUN_STATUS_RUNNING), "running");
  CHECK_STREQ (ocirun_status_name (OCIRUN_STATUS_PAUSED), "paused");
  CHECK_STREQ (ocirun_status_name (OCIRUN_STATUS_STOPPED), "stopped");
  ocirun_error_free (&err);
}

static void
test_start_time_odd_comm (void)
{
  int ready[2], go[2];
  uint64_t before, after;
  pid_t child;
  char c = 0;

  CHECK (pipe (ready) == 0 && pipe (go) == 0);
  child = fork ();
  if (child == 0)
    {
      close (ready[0]);
      close (go[1]);
      if (read (go[0], &c, 1) != 1)
        _exit (1);
      /* comm with spaces and parentheses, as a hostile process may choose */
      prctl (PR_SET_NAME, ") 1 2 3 (x) ");
      if (write (ready[1], "x", 1) != 1)
        _exit (1);
      for (;;)
        pause ();
    }
  close (ready[1]);
  close (go[0]);
  before = ocirun_pid_start_time (child);
  CHECK (write (go[1], "x", 1) == 1);
  CHECK (read (ready[0], &c, 1) == 1);
  {
    cleanup_free char *p = NULL, *stat = NULL;
    size_t len;
    ocirun_error_t err = NULL;
    xasprintf (&p, "/proc/%d/stat", (int)child);
    if (ocirun_read_file (p, &stat, &len, &err) == 0)
      CHECK (strstr (stat, "() 1 2 3 (x) )") != NULL);
    ocirun_error_free (&err);
  }
  after = ocirun_pid_start_time (child);
  CHECK (before > 0);
  CHECK (after == before);
  CHECK (ocirun_pid_start_time (getpid ()) <= before);
  kill (child, SIGKILL);
  waitpid (child, NULL, 0);
  close (ready[0]);
  close (go[1]);
  CHECK (ocirun_pid_start_time (-1) == 0);
}

static void
test_remove (void)
{
  ocirun_error_t err = NULL;
  cleanup_free char *dir = NULL;
  int dfd, ret;

  xasprintf (&dir, "%s/a", root);
  dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK (mkfifoat (dfd, "exec.fifo", 0600) == 0);
  CHECK (ocirun_write_file_atomic_at (dfd, "extra", "x", 1, 0600, &err) == 0);
  close (dfd);

  ret = ocirun_state_remove (root, "a", &err);
  CHECK (ret == 0);
  if (err)
    fprintf (stderr, "  %s\n", err->msg);
  CHECK (!exists_in_root ("a"));
  CHECK (count_entries (root) == 0);

  ret = ocirun_state_remove (root, "a", &err);
  CHECK (ret == -ENOENT);
  ocirun_error_free (&err);
}

static void
test_rfc3339 (void)
{
  struct
  {
    time_t s;
    long ns;
    const char *want;
  } cases[] = {
    { 0, 0, "1970-01-01T00:00:00Z" },
    { 1, 123456789, "1970-01-01T00:00:01.123456789Z" },
    { 1, 120000000, "1970-01-01T00:00:01.12Z" },
    { 1, 1, "1970-01-01T00:00:01.000000001Z" },
    { 1795392794, 500, "2026-11-23T00:13:14.0000005Z" },
  };
  char *now;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      struct timespec ts = { .tv_sec = cases[i].s, .tv_nsec = cases[i].ns };
      char *s = ocirun_format_rfc3339 (&ts);
      CHECK_STREQ (s, cases[i].want);
      free (s);
    }

  now = ocirun_now_rfc3339 ();
  CHECK (now != NULL);
  if (now)
    {
      size_t len = strlen (now);
      struct tm tm = { 0 };
      char *rest = strptime (now, "%Y-%m-%dT%H:%M:%S", &tm);
      CHECK (rest != NULL);
      CHECK (len >= 20 && len <= 30 && now[len - 1] == 'Z');
      CHECK (tm.tm_year + 1900 >= 2024);
      if (rest && *rest == '.')
        {
          size_t digits = strspn (rest + 1, "0123456789");
          CHECK (digits >= 1 && digits <= 9 && rest[digits] != '0' && rest[1 + digits] == 'Z');
        }
      else
        CHECK (rest && strcmp (rest, "Z") == 0);
      {
        time_t t = timegm (&tm);
        CHECK (llabs ((long long)(t - time (NULL))) <= 2);
      }
    }
  free (now);
}

int
main (void)
{
  if (mkdtemp (tmpdir) == NULL)
    {
      perror ("mkdtemp");
      return 99;
    }
  xasprintf (&root, "%s/run/ocirun", tmpdir);

  test_reserve ();
  test_abandoned ();
  test_status ();
  test_start_time_odd_comm ();
  test_remove ();
  test_rfc3339 ();

  {
    cleanup_free char *cmd = NULL;
    xasprintf (&cmd, "rm -rf '%s'", tmpdir);
    if (system (cmd) != 0)
      fprintf (stderr, "cannot remove %s\n", tmpdir);
  }
  free (root);
  UNIT_DONE ();
}
