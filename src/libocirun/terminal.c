#include "config.h"
#include "setup.h"
#include "util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

/* What runc sends along with the master: the name it opened it by. */
#define CONSOLE_NAME "/dev/ptmx"

int
ocirun_pty_open (const oci_box *size, int *master, int *slave, char **slave_path, ocirun_error_t *err)
{
  cleanup_close int m = -1;
  cleanup_close int s = -1;
  char name[64];
  int ret;

  m = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0)
    return ocirun_make_error (err, errno, "open pty master `/dev/ptmx`");
  if (grantpt (m) < 0)
    return ocirun_make_error (err, errno, "grantpt");
  if (unlockpt (m) < 0)
    return ocirun_make_error (err, errno, "unlockpt");
  ret = ptsname_r (m, name, sizeof name);
  if (ret != 0)
    return ocirun_make_error (err, ret, "ptsname");

    /* TIOCGPTPEER opens the very slave of this master, with no path lookup
     * that a racing mount over /dev/pts could redirect. */
#ifdef TIOCGPTPEER
  s = ioctl (m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
#endif
  if (s < 0)
    s = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0)
    return ocirun_make_error (err, errno, "open pty slave `%s`", name);

  if (size)
    {
      struct winsize ws = { .ws_row = (unsigned short)size->height, .ws_col = (unsigned short)size->width };
      if (ioctl (m, TIOCSWINSZ, &ws) < 0)
        return ocirun_make_error (err, errno, "set console size of `%s`", name);
    }

  if (slave_path)
    *slave_path = xstrdup (name);
  *master = steal_fd (&m);
  *slave = steal_fd (&s);
  return 0;
}

/* Connects to a unix socket by path; paths longer than sun_path are reached
 * through their directory's /proc/self/fd entry. */
static int
connect_unix (const char *path, ocirun_error_t *err)
{
  cleanup_close int sock = -1;
  cleanup_close int dirfd = -1;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  const char *target = path;
  char via_proc[sizeof addr.sun_path];

  sock = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0)
    return ocirun_make_error (err, errno, "create unix socket");

  if (strlen (path) >= sizeof addr.sun_path)
    {
      cleanup_free char *dir = xstrdup (path);
      char *slash = strrchr (dir, '/');
      const char *base;

      if (slash == NULL)
        return ocirun_make_error (err, ENAMETOOLONG, "connect to `%s`", path);
      base = path + (slash - dir) + 1;
      *slash = '\0';
      dirfd = open (dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirfd < 0)
        return ocirun_make_error (err, errno, "open `%s`", dir);
      if ((size_t)snprintf (via_proc, sizeof via_proc, "/proc/self/fd/%d/%s", dirfd, base) >= sizeof via_proc)
        return ocirun_make_error (err, ENAMETOOLONG, "connect to `%s`", path);
      target = via_proc;
    }
  memcpy (addr.sun_path, target, strlen (target) + 1);

  if (TEMP_FAILURE_RETRY_INT (connect (sock, (struct sockaddr *)&addr, sizeof addr)) < 0)
    return ocirun_make_error (err, errno, "connect to console socket `%s`", path);
  return steal_fd (&sock);
}

static int
send_fd (int sock, int fd, const char *name, ocirun_error_t *err)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen (name) };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
  struct cmsghdr *cmsg;

  memset (&ctl, 0, sizeof ctl);
  cmsg = CMSG_FIRSTHDR (&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cmsg), &fd, sizeof fd);

  if (TEMP_FAILURE_RETRY_INT (sendmsg (sock, &msg, MSG_NOSIGNAL)) < 0)
    return ocirun_make_error (err, errno, "send console fd");
  return 0;
}

int
ocirun_send_console (const char *socket_path, int master, ocirun_error_t *err)
{
  cleanup_close int sock = -1;
  int ret;

  sock = connect_unix (socket_path, err);
  if (sock < 0)
    return sock;
  ret = send_fd (sock, master, CONSOLE_NAME, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "console socket `%s`", socket_path);
  return 0;
}

int
ocirun_recv_fd (int sock, char **name, ocirun_error_t *err)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int) * 8)];
    struct cmsghdr align;
  } ctl;
  char data[4096];
  struct iovec iov = { .iov_base = data, .iov_len = sizeof data - 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
  struct cmsghdr *cmsg;
  int fd = -1;
  ssize_t n;

  memset (&ctl, 0, sizeof ctl);
  n = TEMP_FAILURE_RETRY_INT (recvmsg (sock, &msg, MSG_CMSG_CLOEXEC));
  if (n < 0)
    return ocirun_make_error (err, errno, "receive fd");

  for (cmsg = CMSG_FIRSTHDR (&msg); cmsg; cmsg = CMSG_NXTHDR (&msg, cmsg))
    {
      size_t count;

      if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
        continue;
      count = (cmsg->cmsg_len - CMSG_LEN (0)) / sizeof (int);
      for (size_t i = 0; i < count; i++)
        {
          int got;
          memcpy (&got, CMSG_DATA (cmsg) + i * sizeof (int), sizeof got);
          /* One fd expected: keep the first, close any extra. */
          if (fd < 0)
            fd = got;
          else
            close (got);
        }
    }
  if (msg.msg_flags & MSG_CTRUNC)
    {
      if (fd >= 0)
        close (fd);
      return ocirun_make_error (err, EMSGSIZE, "receive fd: control data truncated");
    }
  if (fd < 0)
    return ocirun_make_error (err, n == 0 ? ECONNRESET : EBADMSG, "receive fd: no fd in the message");

  if (name)
    {
      data[n] = '\0';
      *name = xstrdup (data);
    }
  return fd;
}

int
ocirun_setup_console_stdio (int slave, ocirun_error_t *err)
{
  /* The caller may already lead its session (then setsid fails with EPERM
   * and the session is the one wanted). */
  if (setsid () < 0 && getsid (0) != getpid ())
    return ocirun_make_error (err, errno, "setsid");
  if (ioctl (slave, TIOCSCTTY, 0) < 0)
    return ocirun_make_error (err, errno, "set controlling terminal");
  for (int i = 0; i <= 2; i++)
    {
      if (slave == i)
        {
          /* dup2 onto itself keeps FD_CLOEXEC: clear it by hand. */
          if (fcntl (i, F_SETFD, 0) < 0)
            return ocirun_make_error (err, errno, "fcntl console fd %d", i);
          continue;
        }
      if (dup2 (slave, i) < 0)
        return ocirun_make_error (err, errno, "dup console onto fd %d", i);
    }
  return 0;
}

/* One direction of the relay: data read from `from` waits in buf until
 * `to` takes it, so neither side blocks the other. */
struct pipe_buf
{
  int from, to;
  char buf[8192];
  size_t len, off;
  bool eof;
};

static int
buf_fill (struct pipe_buf *b)
{
  ssize_t n = read (b->from, b->buf, sizeof b->buf);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  if (n <= 0)
    {
      /* EIO on the master means every slave fd is closed. */
      b->eof = true;
      return n < 0 && errno != EIO ? -errno : 0;
    }
  b->len = (size_t)n;
  b->off = 0;
  return 1;
}

static int
buf_flush (struct pipe_buf *b)
{
  while (b->off < b->len)
    {
      ssize_t n = write (b->to, b->buf + b->off, b->len - b->off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return 0;
      if (n < 0)
        return -errno;
      b->off += (size_t)n;
    }
  b->len = b->off = 0;
  return 0;
}

static void
copy_winsize (int from, int to)
{
  struct winsize ws;

  if (ioctl (from, TIOCGWINSZ, &ws) == 0)
    ioctl (to, TIOCSWINSZ, &ws);
}

int
ocirun_pty_relay (int master, pid_t child, int child_pidfd, bool forward, ocirun_error_t *err)
{
  cleanup_free struct pipe_buf *in = xmalloc0 (sizeof *in);
  cleanup_free struct pipe_buf *out = xmalloc0 (sizeof *out);
  cleanup_close int sigfd = -1;
  struct termios saved;
  bool raw = false, child_done = false;
  sigset_t winch, old_mask;
  int master_flags, ret = 0;

  in->from = STDIN_FILENO;
  in->to = master;
  out->from = master;
  out->to = STDOUT_FILENO;

  /* Only the master is ours to make non-blocking: stdin/stdout are shared
   * with whoever started us. */
  master_flags = fcntl (master, F_GETFL);
  if (master_flags < 0 || fcntl (master, F_SETFL, master_flags | O_NONBLOCK) < 0)
    return ocirun_make_error (err, errno, "set console non-blocking");

  sigemptyset (&winch);
  sigaddset (&winch, SIGWINCH);
  sigprocmask (SIG_BLOCK, &winch, &old_mask);
  if (forward)
    sigfillset (&winch);
  sigfd = signalfd (-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0)
    {
      ret = ocirun_make_error (err, errno, "signalfd");
      goto out;
    }

  if (isatty (STDIN_FILENO))
    {
      struct termios t;

      copy_winsize (STDIN_FILENO, master);
      if (tcgetattr (STDIN_FILENO, &saved) == 0)
        {
          t = saved;
          cfmakeraw (&t);
          /* The container's pty does the line discipline; the local
           * terminal only passes bytes through. */
          if (tcsetattr (STDIN_FILENO, TCSANOW, &t) == 0)
            raw = true;
        }
    }

  for (;;)
    {
      struct pollfd fds[5];
      nfds_t nfds = 0;
      int idx_in = -1, idx_master = -1, idx_sig = -1, idx_child = -1;
      int timeout = -1, r;

      if (!in->eof && in->len == 0)
        {
          idx_in = (int)nfds;
          fds[nfds++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
        }
      /* The master is polled once for both directions. */
      {
        short ev = 0;
        if (!out->eof && out->len == 0)
          ev |= POLLIN;
        if (in->len > 0)
          ev |= POLLOUT;
        if (ev)
          {
            idx_master = (int)nfds;
            fds[nfds++] = (struct pollfd){ .fd = master, .events = ev };
          }
      }
      if (out->len > 0)
        {
          fds[nfds++] = (struct pollfd){ .fd = STDOUT_FILENO, .events = POLLOUT };
        }
      idx_sig = (int)nfds;
      fds[nfds++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
      if (!child_done && child_pidfd >= 0)
        {
          idx_child = (int)nfds;
          fds[nfds++] = (struct pollfd){ .fd = child_pidfd, .events = POLLIN };
        }

      /* Once the child is gone, what is left in the master is drained
       * for as long as it keeps coming: other holders of the slave (exec'd
       * processes) must not keep us here. */
      if (child_done)
        timeout = 100;

      r = poll (fds, nfds, timeout);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          ret = ocirun_make_error (err, errno, "poll console");
          goto out;
        }
      if (r == 0 && child_done)
        break;

      if (idx_sig >= 0 && (fds[idx_sig].revents & POLLIN))
        {
          struct signalfd_siginfo si;
          bool resized = false;
          while (read (sigfd, &si, sizeof si) == (ssize_t)sizeof si)
            {
              int signo = (int)si.ssi_signo;
              if (signo == SIGWINCH)
                resized = true;
              else if (signo != SIGCHLD && !child_done
                       && (child_pidfd < 0 || syscall (SYS_pidfd_send_signal, child_pidfd, signo, NULL, 0) < 0))
                kill (child, signo);
            }
          if (resized)
            copy_winsize (STDIN_FILENO, master);
        }
      if (idx_child >= 0 && (fds[idx_child].revents & (POLLIN | POLLHUP)))
        child_done = true;

      if (idx_in >= 0 && fds[idx_in].revents)
        {
          r = buf_fill (in);
          if (r < 0)
            in->eof = true; /* a broken stdin ends input, not the relay */
        }
      if (idx_master >= 0 && (fds[idx_master].revents & (POLLIN | POLLHUP | POLLERR)) && !out->eof && out->len == 0)
        {
          r = buf_fill (out);
          if (r < 0)
            {
              ret = ocirun_make_error (err, -r, "read console");
              goto out;
            }
        }
      if (in->len > 0)
        {
          r = buf_flush (in);
          if (r < 0)
            {
              /* The container side is gone; drop its input. */
              in->len = in->off = 0;
              in->eof = true;
            }
        }
      if (out->len > 0)
        {
          r = buf_flush (out);
          if (r < 0)
            {
              ret = ocirun_make_error (err, -r, "write console output");
              goto out;
            }
        }

      if (out->eof && out->len == 0 && (child_done || child_pidfd < 0))
        break;
      if (out->eof && child_pidfd >= 0 && !child_done)
        {
          /* Every slave is closed: only the child's exit is left to see. */
          struct pollfd p = { .fd = child_pidfd, .events = POLLIN };
          while (poll (&p, 1, -1) < 0 && errno == EINTR)
            ;
          break;
        }
    }

out:
  if (raw)
    tcsetattr (STDIN_FILENO, TCSANOW, &saved);
  sigprocmask (SIG_SETMASK, &old_mask, NULL);
  fcntl (master, F_SETFL, master_flags);
  return ret;
}

int
ocirun_pty_from_master (int master, const oci_box *size, int *slave, ocirun_error_t *err)
{
  int unlock = 0;
  int fd;

  if (ioctl (master, TIOCSPTLCK, &unlock) < 0)
    return ocirun_make_error (err, errno, "unlock pty");
  /* TIOCGPTPEER opens the slave through the master, without looking up a
   * /dev/pts path (which a container could swap for something else). */
  fd = ioctl (master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return ocirun_make_error (err, errno, "open pty slave");
  if (size && (size->width || size->height))
    {
      struct winsize ws = { .ws_row = size->height, .ws_col = size->width };
      if (ioctl (fd, TIOCSWINSZ, &ws) < 0)
        {
          int e = errno;
          close (fd);
          return ocirun_make_error (err, e, "set console size");
        }
    }
  *slave = fd;
  return 0;
}
