#include "config.h"
#include "setup.h"
#include "util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How much of a hook's stdout and stderr goes into an error message. */
#define HOOK_OUTPUT_MAX 4096

struct captured
{
  int fd;
  char buf[HOOK_OUTPUT_MAX + 1];
  size_t len;
  bool truncated;
};

static int
pidfd_open_ (pid_t pid)
{
#ifdef SYS_pidfd_open
  return (int)syscall (SYS_pidfd_open, pid, 0);
#else
  errno = ENOSYS;
  return -1;
#endif
}

/* The child's stdio comes from dup2 onto 0..2, which goes wrong when a
 * source is itself one of 0..2 (the runtime started with a closed stdio). */
static int
move_above_stdio (int *fd)
{
  int nfd;

  if (*fd > STDERR_FILENO)
    return 0;
  nfd = fcntl (*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (nfd < 0)
    return -1;
  close (*fd);
  *fd = nfd;
  return 0;
}

static void
close_from (int lowfd)
{
  struct rlimit rl;
  long max = 65536;

#ifdef SYS_close_range
  if (syscall (SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
    return;
#endif
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < max)
    max = (long)rl.rlim_cur;
  for (long fd = lowfd; fd < max; fd++)
    close ((int)fd);
}

/* In the forked child: becomes the hook. Never returns. */
static void __attribute__ ((noreturn)) exec_hook (const oci_hook *hook, int in, int out, int errfd, int report)
{
  char *default_argv[] = { hook->path, NULL };
  char *empty_env[] = { NULL };
  char **argv = hook->args && hook->args_len > 0 ? hook->args : default_argv;
  char **envp = hook->env ? hook->env : empty_env;
  sigset_t none;
  int e;

  /* Its own process group, so a timeout kills whatever it started too. */
  setpgid (0, 0);

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    signal (sig, SIG_DFL);

  if (dup2 (in, STDIN_FILENO) < 0 || dup2 (out, STDOUT_FILENO) < 0 || dup2 (errfd, STDERR_FILENO) < 0)
    goto fail;
  if (report != 3)
    {
      if (dup3 (report, 3, O_CLOEXEC) < 0)
        goto fail;
      report = 3;
    }
  /* Nothing of the runtime's leaks into the hook, CLOEXEC or not. */
  close_from (4);

  execve (hook->path, argv, envp);

fail:
  e = errno;
  /* Nothing to do if the report is lost: the exit status still says 127. */
  (void)!write (report, &e, sizeof e);
  _exit (127);
}

static long
ms_until (const struct timespec *deadline)
{
  struct timespec now;
  long ms;

  clock_gettime (CLOCK_MONOTONIC, &now);
  ms = (long)(deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
  return ms < 0 ? 0 : ms;
}

/* Reads what is available; returns false at EOF or on error. */
static bool
capture (struct captured *c)
{
  char scratch[4096];

  for (;;)
    {
      size_t room = HOOK_OUTPUT_MAX - c->len;
      char *dst = room > 0 ? c->buf + c->len : scratch;
      size_t want = room > 0 ? room : sizeof scratch;
      ssize_t n = read (c->fd, dst, want);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return errno == EAGAIN;
      if (n == 0)
        return false;
      if (room > 0)
        c->len += (size_t)n;
      else
        c->truncated = true;
    }
}

static void
close_capture (struct captured *c)
{
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
}

/* The text to quote in an error: trailing blank lines trimmed. */
static const char *
captured_text (struct captured *c)
{
  while (c->len > 0 && (c->buf[c->len - 1] == '\n' || c->buf[c->len - 1] == ' ' || c->buf[c->len - 1] == '\r'))
    c->len--;
  c->buf[c->len] = '\0';
  return c->buf;
}

static int
run_one (const oci_hook *hook, size_t idx, const char *phase, const char *state_json, struct ocirun_logger *log,
         ocirun_error_t *err)
{
  int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 }, rep_pipe[2] = { -1, -1 };
  cleanup_free struct captured *out = NULL;
  cleanup_free struct captured *errout = NULL;
  cleanup_close int pidfd = -1;
  cleanup_close int in_w = -1;
  cleanup_close int rep_r = -1;
  size_t state_len = state_json ? strlen (state_json) : 0, written = 0;
  sigset_t pipe_set, old_mask, pending;
  bool had_sigpipe = false, got_epipe = false, timed_out = false, exited = false;
  struct timespec deadline = { 0, 0 };
  int status = 0, ret = 0, e, child_errno = 0;
  const char *path = hook->path ? hook->path : "";
  pid_t pid;
  ssize_t n;

#define HOOK_FAIL(errno_, fmt, ...)                                                                                    \
  ocirun_make_error (err, (errno_), "%s hook #%zu (`%s`): " fmt, phase, idx, path, ##__VA_ARGS__)

  if (hook->path == NULL || hook->path[0] == '\0')
    return HOOK_FAIL (EINVAL, "path is empty");
  if (hook->has_timeout && hook->timeout <= 0)
    return HOOK_FAIL (EINVAL, "timeout must be greater than zero, got %d", (int)hook->timeout);

  if (pipe2 (in_pipe, O_CLOEXEC) < 0 || pipe2 (out_pipe, O_CLOEXEC) < 0 || pipe2 (err_pipe, O_CLOEXEC) < 0
      || pipe2 (rep_pipe, O_CLOEXEC) < 0)
    {
      ret = HOOK_FAIL (errno, "pipe");
      goto close_all;
    }
  for (int i = 0; i < 2; i++)
    if (move_above_stdio (&in_pipe[i]) < 0 || move_above_stdio (&out_pipe[i]) < 0 || move_above_stdio (&err_pipe[i]) < 0
        || move_above_stdio (&rep_pipe[i]) < 0)
      {
        ret = HOOK_FAIL (errno, "dup");
        goto close_all;
      }

  ocirun_debug (log, "running %s hook #%zu: %s", phase, idx, path);

  pid = fork ();
  if (pid < 0)
    {
      ret = HOOK_FAIL (errno, "fork");
      goto close_all;
    }
  if (pid == 0)
    exec_hook (hook, in_pipe[0], out_pipe[1], err_pipe[1], rep_pipe[1]);

  /* Also from here, in case the child has not run yet when a timeout kills
   * the group. */
  setpgid (pid, pid);

  close (in_pipe[0]);
  close (out_pipe[1]);
  close (err_pipe[1]);
  close (rep_pipe[1]);
  in_w = in_pipe[1];
  rep_r = rep_pipe[0];
  out = xmalloc0 (sizeof *out);
  errout = xmalloc0 (sizeof *errout);
  out->fd = out_pipe[0];
  errout->fd = err_pipe[0];

  /* execve closes the report pipe; anything read from it is the errno of a
   * failed exec. */
  n = TEMP_FAILURE_RETRY_INT (read (rep_r, &child_errno, sizeof child_errno));
  if (n == (ssize_t)sizeof child_errno)
    {
      TEMP_FAILURE_RETRY_INT (waitpid (pid, NULL, 0));
      close_capture (out);
      close_capture (errout);
      return HOOK_FAIL (child_errno, "exec");
    }

  pidfd = pidfd_open_ (pid);

  if (fcntl (in_w, F_SETFL, O_NONBLOCK) < 0 || fcntl (out->fd, F_SETFL, O_NONBLOCK) < 0
      || fcntl (errout->fd, F_SETFL, O_NONBLOCK) < 0)
    {
      e = errno;
      kill (-pid, SIGKILL);
      kill (pid, SIGKILL);
      TEMP_FAILURE_RETRY_INT (waitpid (pid, NULL, 0));
      close_capture (out);
      close_capture (errout);
      return HOOK_FAIL (e, "fcntl");
    }

  if (hook->has_timeout)
    {
      clock_gettime (CLOCK_MONOTONIC, &deadline);
      deadline.tv_sec += hook->timeout;
    }

  /* A hook need not read its stdin: writing to it once it has exited must
   * give EPIPE, not kill the runtime with SIGPIPE. */
  sigemptyset (&pipe_set);
  sigaddset (&pipe_set, SIGPIPE);
  if (sigpending (&pending) == 0)
    had_sigpipe = sigismember (&pending, SIGPIPE) == 1;
  sigprocmask (SIG_BLOCK, &pipe_set, &old_mask);

  if (state_len == 0)
    {
      close (in_w);
      in_w = -1;
    }

  while (!exited)
    {
      struct pollfd fds[4];
      nfds_t nfds = 0;
      int timeout = -1, r;

      if (pidfd >= 0)
        fds[nfds++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
      if (out->fd >= 0)
        fds[nfds++] = (struct pollfd){ .fd = out->fd, .events = POLLIN };
      if (errout->fd >= 0)
        fds[nfds++] = (struct pollfd){ .fd = errout->fd, .events = POLLIN };
      if (in_w >= 0)
        fds[nfds++] = (struct pollfd){ .fd = in_w, .events = POLLOUT };

      if (hook->has_timeout)
        timeout = (int)ms_until (&deadline);
      /* Without a pidfd (old kernels) the exit is found by polling. */
      if (pidfd < 0 && (timeout < 0 || timeout > 50))
        timeout = 50;

      r = poll (fds, nfds, timeout);
      if (r < 0 && errno != EINTR)
        {
          e = errno;
          kill (-pid, SIGKILL);
          kill (pid, SIGKILL);
          TEMP_FAILURE_RETRY_INT (waitpid (pid, NULL, 0));
          ret = HOOK_FAIL (e, "poll");
          goto restore;
        }

      if (in_w >= 0)
        {
          n = write (in_w, state_json + written, state_len - written);
          if (n > 0)
            written += (size_t)n;
          else if (n < 0 && errno != EAGAIN && errno != EINTR)
            {
              if (errno == EPIPE)
                got_epipe = true;
              else
                ocirun_debug (log, "%s hook #%zu: write state: %s", phase, idx, strerror (errno));
              close (in_w);
              in_w = -1;
            }
          if (in_w >= 0 && written == state_len)
            {
              /* EOF tells the hook the state is complete. */
              close (in_w);
              in_w = -1;
            }
        }
      if (out->fd >= 0 && !capture (out))
        close_capture (out);
      if (errout->fd >= 0 && !capture (errout))
        close_capture (errout);

      if (pidfd >= 0)
        {
          if (fds[0].revents & (POLLIN | POLLHUP))
            exited = true;
        }
      else
        {
          pid_t w = waitpid (pid, &status, WNOHANG);
          if (w == pid)
            break;
        }

      if (!exited && hook->has_timeout && ms_until (&deadline) == 0)
        {
          timed_out = true;
          break;
        }
    }

  if (timed_out)
    {
      kill (-pid, SIGKILL);
      kill (pid, SIGKILL);
    }
  if (pidfd >= 0 || timed_out)
    {
      if (TEMP_FAILURE_RETRY_INT (waitpid (pid, &status, 0)) < 0)
        {
          ret = HOOK_FAIL (errno, "wait");
          goto restore;
        }
    }

  if (timed_out)
    {
      ret = HOOK_FAIL (0, "timed out after %ds", (int)hook->timeout);
      goto restore;
    }

  /* What the hook wrote before exiting; not waiting for EOF, since anything
   * it left running in the background may hold the pipes open. */
  if (out->fd >= 0)
    capture (out);
  if (errout->fd >= 0)
    capture (errout);

  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    {
      ret = 0;
      goto restore;
    }
  {
    const char *text = captured_text (errout);
    const char *otext = captured_text (out);
    char what[64];

    if (WIFEXITED (status))
      snprintf (what, sizeof what, "exit status %d", WEXITSTATUS (status));
    else if (WIFSIGNALED (status))
      snprintf (what, sizeof what, "killed by signal %d (%s)", WTERMSIG (status), strsignal (WTERMSIG (status)));
    else
      snprintf (what, sizeof what, "wait status %#x", (unsigned)status);

    if (text[0] && otext[0])
      ret = HOOK_FAIL (0, "%s: %s%s (stdout: %s%s)", what, text, errout->truncated ? "..." : "", otext,
                       out->truncated ? "..." : "");
    else if (text[0] || otext[0])
      ret = HOOK_FAIL (0, "%s: %s%s", what, text[0] ? text : otext,
                       (text[0] ? errout->truncated : out->truncated) ? "..." : "");
    else
      ret = HOOK_FAIL (0, "%s", what);
  }

restore:
  if (got_epipe && !had_sigpipe)
    {
      static const struct timespec zero = { 0, 0 };
      while (sigtimedwait (&pipe_set, NULL, &zero) < 0 && errno == EINTR)
        ;
    }
  sigprocmask (SIG_SETMASK, &old_mask, NULL);
  close_capture (out);
  close_capture (errout);
  return ret;

close_all:
  for (int i = 0; i < 2; i++)
    {
      ocirun_closep (&in_pipe[i]);
      ocirun_closep (&out_pipe[i]);
      ocirun_closep (&err_pipe[i]);
      ocirun_closep (&rep_pipe[i]);
    }
  return ret;
#undef HOOK_FAIL
}

int
ocirun_run_hooks (oci_hook **hooks, size_t n, const char *phase, const char *state_json, struct ocirun_logger *log,
                  ocirun_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    {
      int ret;

      if (hooks == NULL || hooks[i] == NULL)
        break;
      ret = run_one (hooks[i], i, phase, state_json, log, err);
      if (ret < 0)
        return ret;
    }
  return 0;
}
