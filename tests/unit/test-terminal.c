#include "config.h"
#include "setup.h"
#include "unit.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ocirun-test-terminal-XXXXXX";

/* Reads from fd until `want` shows up in what was read, or 5s pass. */
static bool
read_until (int fd, const char *want, char *buf, size_t size)
{
  size_t len = 0;

  buf[0] = '\0';
  while (len < size - 1)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      ssize_t n;

      if (poll (&p, 1, 5000) <= 0)
        return false;
      n = read (fd, buf + len, size - 1 - len);
      if (n <= 0)
        return strstr (buf, want) != NULL;
      len += (size_t)n;
      buf[len] = '\0';
      if (strstr (buf, want))
        return true;
    }
  return false;
}

static int
listen_unix (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int s = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (s < 0 || strlen (path) >= sizeof addr.sun_path)
    return -1;
  strcpy (addr.sun_path, path);
  if (bind (s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen (s, 1) < 0)
    {
      close (s);
      return -1;
    }
  return s;
}

static void
test_pty_open (void)
{
  oci_box size = { .height = 33, .width = 121, .has_height = true, .has_width = true };
  ocirun_error_t err = NULL;
  char *path = NULL;
  int master = -1, slave = -1, ret;
  struct winsize ws;
  struct stat a, b;

  ret = ocirun_pty_open (&size, &master, &slave, &path, &err);
  CHECK (ret == 0);
  if (ret < 0)
    {
      fprintf (stderr, "  %s\n", err->msg);
      ocirun_error_free (&err);
      return;
    }
  CHECK (path && strncmp (path, "/dev/pts/", 9) == 0);
  CHECK (stat (path, &a) == 0 && fstat (slave, &b) == 0 && a.st_rdev == b.st_rdev);
  CHECK (ioctl (slave, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 33 && ws.ws_col == 121);
  CHECK ((fcntl (master, F_GETFD) & FD_CLOEXEC) && (fcntl (slave, F_GETFD) & FD_CLOEXEC));
  CHECK (isatty (slave));
  close (master);
  close (slave);
  free (path);

  /* Without a size. */
  ret = ocirun_pty_open (NULL, &master, &slave, NULL, &err);
  CHECK (ret == 0);
  close (master);
  close (slave);
}

static void
send_and_receive (const char *sockpath)
{
  ocirun_error_t err = NULL;
  char *path = NULL, *name = NULL;
  int master = -1, slave = -1, lsock, conn, got, ret;
  char buf[256];
  struct termios t;

  lsock = listen_unix (strlen (sockpath) < 100 ? sockpath : "");
  if (strlen (sockpath) >= 100)
    {
      /* Too long for sun_path: bind through the directory. */
      cleanup_free char *dir = xstrdup (sockpath);
      char *slash = strrchr (dir, '/');
      int cwd = open (".", O_PATH | O_CLOEXEC);
      *slash = '\0';
      CHECK (chdir (dir) == 0);
      lsock = listen_unix (slash + 1);
      CHECK (fchdir (cwd) == 0);
      close (cwd);
    }
  CHECK (lsock >= 0);
  if (lsock < 0)
    return;

  ret = ocirun_pty_open (NULL, &master, &slave, &path, &err);
  CHECK (ret == 0);
  ret = ocirun_send_console (sockpath, master, &err);
  CHECK (ret == 0);
  if (err)
    fprintf (stderr, "  %s\n", err->msg);
  ocirun_error_free (&err);
  close (master);

  conn = accept4 (lsock, NULL, NULL, SOCK_CLOEXEC);
  CHECK (conn >= 0);
  got = ocirun_recv_fd (conn, &name, &err);
  CHECK (got >= 0);
  CHECK_STREQ (name, "/dev/ptmx");
  CHECK (got >= 0 && (fcntl (got, F_GETFD) & FD_CLOEXEC));

  if (got >= 0)
    {
      /* The received fd is the master of our slave. */
      char pts[64];
      CHECK (ptsname_r (got, pts, sizeof pts) == 0 && strcmp (pts, path) == 0);
      CHECK (tcgetattr (slave, &t) == 0);
      cfmakeraw (&t);
      CHECK (tcsetattr (slave, TCSANOW, &t) == 0);
      CHECK (write (slave, "hello pty", 9) == 9);
      CHECK (read_until (got, "hello pty", buf, sizeof buf));
      CHECK (write (got, "back", 4) == 4);
      CHECK (read_until (slave, "back", buf, sizeof buf));
      close (got);
    }
  close (slave);
  close (conn);
  close (lsock);
  free (name);
  free (path);
}

static void
test_send_console (void)
{
  cleanup_free char *sockpath = NULL;
  cleanup_free char *longdir = NULL;
  cleanup_free char *longsock = NULL;
  ocirun_error_t err = NULL;
  int ret;

  xasprintf (&sockpath, "%s/console.sock", tmpdir);
  send_and_receive (sockpath);

  xasprintf (&longdir, "%s/%s", tmpdir,
             "a-directory-name-long-enough-that-the-socket-path-does-not-fit-in-sun-path-0123456789");
  CHECK (mkdir (longdir, 0700) == 0);
  xasprintf (&longsock, "%s/console.sock", longdir);
  CHECK (strlen (longsock) >= sizeof ((struct sockaddr_un *)0)->sun_path);
  send_and_receive (longsock);

  /* Nobody listening. */
  ret = ocirun_send_console ("/nonexistent/console.sock", 0, &err);
  CHECK (ret == -ENOENT);
  CHECK (err && strstr (err->msg, "/nonexistent/console.sock") != NULL);
  ocirun_error_free (&err);

  /* recv_fd over a socketpair, without a fd: an error, not a crash. */
  {
    int sp[2];
    CHECK (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
    CHECK (write (sp[0], "x", 1) == 1);
    ret = ocirun_recv_fd (sp[1], NULL, &err);
    CHECK (ret < 0);
    ocirun_error_free (&err);
    close (sp[0]);
    close (sp[1]);
  }
}

static void
test_console_stdio (void)
{
  ocirun_error_t err = NULL;
  char *path = NULL;
  int master = -1, slave = -1;
  char buf[512];
  pid_t pid;
  int status = -1;

  CHECK (ocirun_pty_open (NULL, &master, &slave, &path, &err) == 0);
  pid = fork ();
  if (pid == 0)
    {
      char *tty;
      close (master);
      if (ocirun_setup_console_stdio (slave, &err) < 0)
        _exit (2);
      tty = ttyname (0);
      if (tty == NULL || strcmp (tty, path) != 0)
        _exit (3);
      /* The controlling terminal is the pty. */
      if (tcgetsid (0) != getsid (0))
        _exit (4);
      if (write (1, "on-stdout\n", 10) != 10 || write (2, "on-stderr\n", 10) != 10)
        _exit (5);
      _exit (0);
    }
  close (slave);
  CHECK (read_until (master, "on-stderr", buf, sizeof buf));
  CHECK (strstr (buf, "on-stdout") != NULL);
  waitpid (pid, &status, 0);
  CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    fprintf (stderr, "  console child status %#x\n", status);
  close (master);
  free (path);
}

/* The relay as `run -t` uses it: our stdin/stdout are pipes here. */
static void
test_relay (void)
{
  int to_relay[2], from_relay[2];
  char buf[4096];
  pid_t relay;
  int status = -1;

  CHECK (pipe2 (to_relay, O_CLOEXEC) == 0 && pipe2 (from_relay, O_CLOEXEC) == 0);
  relay = fork ();
  if (relay == 0)
    {
      ocirun_error_t err = NULL;
      int master, slave, pidfd, ret;
      pid_t child;

      if (dup2 (to_relay[0], 0) < 0 || dup2 (from_relay[1], 1) < 0)
        _exit (10);
      if (ocirun_pty_open (NULL, &master, &slave, NULL, &err) < 0)
        _exit (11);
      child = fork ();
      if (child == 0)
        {
          if (ocirun_setup_console_stdio (slave, &err) < 0)
            _exit (12);
          execl ("/bin/sh", "sh", "-c", "read x; echo got:$x; echo more-output; exit 7", (char *)NULL);
          _exit (13);
        }
      close (slave);
      pidfd = (int)syscall (SYS_pidfd_open, child, 0);
      if (pidfd < 0)
        _exit (14);
      ret = ocirun_pty_relay (master, child, pidfd, false, &err);
      if (ret < 0)
        {
          fprintf (stderr, "relay: %s\n", err->msg);
          _exit (15);
        }
      if (waitpid (child, &ret, 0) != child || !WIFEXITED (ret) || WEXITSTATUS (ret) != 7)
        _exit (16);
      _exit (0);
    }
  close (to_relay[0]);
  close (from_relay[1]);
  CHECK (write (to_relay[1], "hi\n", 3) == 3);
  CHECK (read_until (from_relay[0], "more-output", buf, sizeof buf));
  CHECK (strstr (buf, "got:hi") != NULL);
  close (to_relay[1]);
  alarm (10);
  waitpid (relay, &status, 0);
  alarm (0);
  CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    fprintf (stderr, "  relay status %#x\n", status);
  close (from_relay[0]);
}

/* With a terminal on stdin: raw mode while relaying (restored after), the
 * initial size copied, and SIGWINCH carrying new sizes to the container. */
static void
test_relay_tty (void)
{
  oci_box size = { .height = 20, .width = 70, .has_height = true, .has_width = true };
  ocirun_error_t err = NULL;
  int outer_master = -1, outer_slave = -1, from_relay[2];
  struct termios before, during, after;
  struct winsize ws = { .ws_row = 41, .ws_col = 101 };
  char buf[4096];
  pid_t relay;
  int status = -1;

  CHECK (ocirun_pty_open (&size, &outer_master, &outer_slave, NULL, &err) == 0);
  CHECK (pipe2 (from_relay, O_CLOEXEC) == 0);
  CHECK (tcgetattr (outer_slave, &before) == 0);
  CHECK (before.c_lflag & ICANON);

  relay = fork ();
  if (relay == 0)
    {
      int master, slave, pidfd, ret;
      pid_t child;

      if (dup2 (outer_slave, 0) < 0 || dup2 (from_relay[1], 1) < 0)
        _exit (10);
      if (ocirun_pty_open (NULL, &master, &slave, NULL, &err) < 0)
        _exit (11);
      child = fork ();
      if (child == 0)
        {
          if (ocirun_setup_console_stdio (slave, &err) < 0)
            _exit (12);
          execl ("/bin/sh", "sh", "-c", "echo size1=$(stty size); echo ready; read x; echo size2=$(stty size); exit 0",
                 (char *)NULL);
          _exit (13);
        }
      close (slave);
      pidfd = (int)syscall (SYS_pidfd_open, child, 0);
      if (pidfd < 0)
        _exit (14);
      ret = ocirun_pty_relay (master, child, pidfd, false, &err);
      if (ret < 0)
        _exit (15);
      waitpid (child, NULL, 0);
      _exit (0);
    }
  close (from_relay[1]);
  CHECK (read_until (from_relay[0], "ready", buf, sizeof buf));
  CHECK (strstr (buf, "size1=20 70") != NULL);

  CHECK (tcgetattr (outer_slave, &during) == 0);
  CHECK (!(during.c_lflag & ICANON) && !(during.c_lflag & ECHO));

  CHECK (ioctl (outer_master, TIOCSWINSZ, &ws) == 0);
  CHECK (kill (relay, SIGWINCH) == 0);
  usleep (100000);
  CHECK (write (outer_master, "go\r", 3) == 3);
  CHECK (read_until (from_relay[0], "size2=", buf, sizeof buf));
  /* read_until stops at the marker; the numbers follow. */
  {
    size_t len = strlen (buf);
    if (!strstr (buf, "size2=41 101"))
      read_until (from_relay[0], "101", buf + len, sizeof buf - len);
    CHECK (strstr (buf, "size2=41 101") != NULL);
  }
  alarm (10);
  waitpid (relay, &status, 0);
  alarm (0);
  CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);

  CHECK (tcgetattr (outer_slave, &after) == 0);
  CHECK (after.c_lflag == before.c_lflag && after.c_iflag == before.c_iflag && after.c_oflag == before.c_oflag);
  close (from_relay[0]);
  close (outer_master);
  close (outer_slave);
}

int
main (void)
{
  if (mkdtemp (tmpdir) == NULL)
    {
      perror ("mkdtemp");
      return 99;
    }
  signal (SIGPIPE, SIG_IGN);

  test_pty_open ();
  test_send_console ();
  test_console_stdio ();
  test_relay ();
  test_relay_tty ();

  {
    cleanup_free char *cmd = NULL;
    xasprintf (&cmd, "rm -rf '%s'", tmpdir);
    if (system (cmd) != 0)
      fprintf (stderr, "cannot remove %s\n", tmpdir);
  }
  UNIT_DONE ();
}
