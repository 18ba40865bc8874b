#include "config.h"
#include "setup.h"
#include "unit.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ocirun-test-hooks-XXXXXX";

static oci_hook *
make_hook (const char *path, const char *const *args, const char *const *env, int timeout)
{
  oci_hook *h = xmalloc0 (sizeof *h);
  size_t n;

  h->path = xstrdup (path);
  if (args)
    {
      for (n = 0; args[n]; n++)
        ;
      h->args = xmalloc0 ((n + 1) * sizeof (char *));
      for (size_t i = 0; i < n; i++)
        h->args[i] = xstrdup (args[i]);
      h->args_len = n;
      h->has_args = true;
    }
  if (env)
    {
      for (n = 0; env[n]; n++)
        ;
      h->env = xmalloc0 ((n + 1) * sizeof (char *));
      for (size_t i = 0; i < n; i++)
        h->env[i] = xstrdup (env[i]);
      h->env_len = n;
      h->has_env = true;
    }
  if (timeout)
    {
      h->timeout = timeout;
      h->has_timeout = true;
    }
  return h;
}

static char *
read_whole (const char *path, size_t *len)
{
  char *data = NULL;
  ocirun_error_t err = NULL;

  if (ocirun_read_file (path, &data, len, &err) < 0)
    {
      fprintf (stderr, "%s\n", err->msg);
      ocirun_error_free (&err);
      return NULL;
    }
  return data;
}

static char *
tmp_path (const char *name)
{
  char *p = NULL;
  xasprintf (&p, "%s/%s", tmpdir, name);
  return p;
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_stdin_is_state (void)
{
  cleanup_free char *out = tmp_path ("stdin");
  cleanup_free char *script = NULL;
  const char *state = "{\"ociVersion\":\"1.2.0\",\"id\":\"x\",\"status\":\"creating\",\"pid\":42}";
  ocirun_error_t err = NULL;
  oci_hook *hooks[2];
  size_t len = 0;
  char *got;
  int ret;

  xasprintf (&script, "cat > '%s'", out);
  hooks[0] = make_hook ("/bin/sh", (const char *const[]){ "sh", "-c", script, NULL }, NULL, 0);
  hooks[1] = NULL;
  ret = ocirun_run_hooks (hooks, 1, "prestart", state, NULL, &err);
  CHECK (ret == 0);
  if (err)
    fprintf (stderr, "%s\n", err->msg);
  got = read_whole (out, &len);
  CHECK_STREQ (got, state);
  CHECK (len == strlen (state));
  free (got);
  ocirun_error_free (&err);
  oci_hook_free (hooks[0]);
}

static void
test_args_env_exact (void)
{
  cleanup_free char *cmdline = tmp_path ("cmdline");
  cleanup_free char *environ_ = tmp_path ("environ");
  cleanup_free char *script = NULL;
  ocirun_error_t err = NULL;
  oci_hook *hooks[2];
  size_t len = 0;
  char *got;
  int ret;

  /* /proc/$$/cmdline and environ are exactly what execve received. */
  xasprintf (&script, "cat /proc/$$/cmdline > '%s'; cat /proc/$$/environ > '%s'", cmdline, environ_);
  hooks[0] = make_hook ("/bin/sh", (const char *const[]){ "my-hook", "-c", script, "x", "a b", NULL },
                        (const char *const[]){ "FOO=bar", "EMPTY=", "SPACE=a b", NULL }, 0);
  hooks[1] = NULL;
  ret = ocirun_run_hooks (hooks, 1, "poststart", "{}", NULL, &err);
  CHECK (ret == 0);

  got = read_whole (cmdline, &len);
  {
    char *expected = xmalloc0 (strlen (script) + 64);
    size_t off = 0;
    const char *parts[] = { "my-hook", "-c", script, "x", "a b" };
    for (size_t i = 0; i < 5; i++)
      {
        memcpy (expected + off, parts[i], strlen (parts[i]) + 1);
        off += strlen (parts[i]) + 1;
      }
    CHECK (got != NULL && len == off && memcmp (got, expected, off) == 0);
    free (expected);
  }
  free (got);

  got = read_whole (environ_, &len);
  {
    static const char expected[] = "FOO=bar\0EMPTY=\0SPACE=a b\0";
    CHECK (got != NULL && len == sizeof expected - 1 && memcmp (got, expected, len) == 0);
  }
  free (got);
  ocirun_error_free (&err);
  oci_hook_free (hooks[0]);

  /* Without args, argv is [path]; without env, the environment is empty. */
  free (script);
  script = NULL;
  {
    cleanup_free char *wrapper = tmp_path ("noargs.sh");
    cleanup_free char *text = NULL;
    FILE *f;

    xasprintf (&text, "#!/bin/sh\ncat /proc/$$/cmdline > '%s'; cat /proc/$$/environ > '%s'\n", cmdline, environ_);
    f = fopen (wrapper, "w");
    CHECK (f != NULL);
    if (f)
      {
        fputs (text, f);
        fclose (f);
      }
    chmod (wrapper, 0755);
    hooks[0] = make_hook (wrapper, NULL, NULL, 0);
    ret = ocirun_run_hooks (hooks, 1, "poststop", "{}", NULL, &err);
    CHECK (ret == 0);
    got = read_whole (environ_, &len);
    CHECK (got != NULL && len == 0);
    free (got);
    got = read_whole (cmdline, &len);
    /* The kernel runs the interpreter: /bin/sh <path> */
    CHECK (got != NULL && len == strlen ("/bin/sh") + 1 + strlen (wrapper) + 1
           && strcmp (got + strlen ("/bin/sh") + 1, wrapper) == 0);
    free (got);
    ocirun_error_free (&err);
    oci_hook_free (hooks[0]);
  }
}

static void
test_exit_status (void)
{
  ocirun_error_t err = NULL;
  oci_hook *hooks[3];
  int ret;

  hooks[0] = make_hook ("/bin/true", NULL, NULL, 0);
  hooks[1] = make_hook ("/bin/sh", (const char *const[]){ "sh", "-c", "echo boom >&2; exit 3", NULL }, NULL, 0);
  hooks[2] = NULL;
  ret = ocirun_run_hooks (hooks, 2, "createRuntime", "{}", NULL, &err);
  CHECK (ret < 0);
  CHECK (err != NULL);
  if (err)
    {
      CHECK_STREQ (err->msg, "createRuntime hook #1 (`/bin/sh`): exit status 3: boom");
      CHECK (strstr (err->msg, "exit status 3") != NULL);
    }
  ocirun_error_free (&err);

  /* The first failure stops the list. */
  {
    cleanup_free char *marker = tmp_path ("marker");
    cleanup_free char *script = NULL;
    oci_hook *h2[3];

    xasprintf (&script, "touch '%s'", marker);
    h2[0] = make_hook ("/bin/false", NULL, NULL, 0);
    h2[1] = make_hook ("/bin/sh", (const char *const[]){ "sh", "-c", script, NULL }, NULL, 0);
    h2[2] = NULL;
    ret = ocirun_run_hooks (h2, 2, "prestart", "{}", NULL, &err);
    CHECK (ret < 0);
    CHECK (err && strcmp (err->msg, "prestart hook #0 (`/bin/false`): exit status 1") == 0);
    CHECK (access (marker, F_OK) < 0 && errno == ENOENT);
    ocirun_error_free (&err);
    oci_hook_free (h2[0]);
    oci_hook_free (h2[1]);
  }

  /* Killed by a signal. */
  {
    oci_hook *h3[2]
        = { make_hook ("/bin/sh", (const char *const[]){ "sh", "-c", "kill -TERM $$", NULL }, NULL, 0), NULL };
    ret = ocirun_run_hooks (h3, 1, "poststart", "{}", NULL, &err);
    CHECK (ret < 0);
    CHECK (err && strstr (err->msg, "killed by signal 15") != NULL);
    ocirun_error_free (&err);
    oci_hook_free (h3[0]);
  }

  oci_hook_free (hooks[0]);
  oci_hook_free (hooks[1]);
}

static void
test_timeout (void)
{
  cleanup_free char *pidfile = tmp_path ("sleeper.pid");
  cleanup_free char *script = NULL;
  cleanup_free char *pidtext = NULL;
  ocirun_error_t err = NULL;
  oci_hook *hooks[2];
  double t0, elapsed;
  size_t len;
  int ret;

  /* The sleeper is a grandchild: killing only the hook would leave it. We
   * become its reaper to see how it ends. */
  prctl (PR_SET_CHILD_SUBREAPER, 1);
  xasprintf (&script, "sleep 10 & echo $! > '%s'; wait", pidfile);
  hooks[0] = make_hook ("/bin/sh", (const char *const[]){ "sh", "-c", script, NULL }, NULL, 1);
  hooks[1] = NULL;
  t0 = now_s ();
  ret = ocirun_run_hooks (hooks, 1, "prestart", "{}", NULL, &err);
  elapsed = now_s () - t0;
  CHECK (ret < 0);
  CHECK (err && strcmp (err->msg, "prestart hook #0 (`/bin/sh`): timed out after 1s") == 0);
  if (err && (elapsed < 0.9 || elapsed >= 3.0))
    fprintf (stderr, "  (%s after %.2fs)\n", err->msg, elapsed);
  CHECK (elapsed >= 0.9 && elapsed < 3.0);
  ocirun_error_free (&err);

  pidtext = read_whole (pidfile, &len);
  CHECK (pidtext != NULL);
  if (pidtext)
    {
      pid_t sleeper = (pid_t)atoi (pidtext);
      int status = 0;
      pid_t w;

      alarm (5);
      w = waitpid (sleeper, &status, 0);
      alarm (0);
      CHECK (w == sleeper);
      CHECK (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
      CHECK (kill (sleeper, 0) < 0 && errno == ESRCH);
    }
  prctl (PR_SET_CHILD_SUBREAPER, 0);
  oci_hook_free (hooks[0]);

  /* timeout must be > 0. */
  hooks[0] = make_hook ("/bin/true", NULL, NULL, 0);
  hooks[0]->has_timeout = true;
  hooks[0]->timeout = 0;
  ret = ocirun_run_hooks (hooks, 1, "prestart", "{}", NULL, &err);
  CHECK (ret == -EINVAL);
  CHECK (err && strstr (err->msg, "timeout must be greater than zero") != NULL);
  ocirun_error_free (&err);
  oci_hook_free (hooks[0]);

  /* A quick hook with a timeout succeeds. */
  hooks[0] = make_hook ("/bin/true", NULL, NULL, 5);
  ret = ocirun_run_hooks (hooks, 1, "prestart", "{}", NULL, &err);
  CHECK (ret == 0);
  ocirun_error_free (&err);
  oci_hook_free (hooks[0]);
}

static void
test_big_state_unread (void)
{
  size_t big = 4 * 1024 * 1024;
  char *state = xmalloc0 (big + 1);
  ocirun_error_t err = NULL;
  oci_hook *hooks[2];
  double t0;
  int ret;

  memset (state, 'x', big);
  hooks[0] = make_hook ("/bin/true", NULL, NULL, 0);
  hooks[1] = NULL;
  /* SIGPIPE keeps its default action: if the runtime let it through, the
   * test would die here. */
  signal (SIGPIPE, SIG_DFL);
  alarm (20);
  t0 = now_s ();
  ret = ocirun_run_hooks (hooks, 1, "poststop", state, NULL, &err);
  alarm (0);
  CHECK (ret == 0);
  CHECK (now_s () - t0 < 5.0);
  {
    sigset_t pending;
    sigpending (&pending);
    CHECK (!sigismember (&pending, SIGPIPE));
  }
  ocirun_error_free (&err);
  oci_hook_free (hooks[0]);

  /* And a hook that reads it all gets it all. */
  {
    cleanup_free char *out = tmp_path ("big");
    cleanup_free char *script = NULL;
    struct stat sb;

    xasprintf (&script, "cat > '%s'", out);
    hooks[0] = make_hook ("/bin/sh", (const char *const[]){ "sh", "-c", script, NULL }, NULL, 10);
    ret = ocirun_run_hooks (hooks, 1, "poststop", state, NULL, &err);
    CHECK (ret == 0);
    CHECK (stat (out, &sb) == 0 && (size_t)sb.st_size == big);
    ocirun_error_free (&err);
    oci_hook_free (hooks[0]);
    unlink (out);
  }
  free (state);
}

static void
test_no_leaked_fds (void)
{
  ocirun_error_t err = NULL;
  oci_hook *hooks[2];
  int fd, ret;

  /* An fd the runtime forgot to mark CLOEXEC must not reach the hook. */
  fd = dup2 (STDOUT_FILENO, 42);
  CHECK (fd == 42);
  hooks[0] = make_hook (
      "/bin/sh",
      (const char *const[]){ "sh", "-c", "for f in 3 4 5 42; do test -e /proc/$$/fd/$f && exit 9; done; exit 0", NULL },
      NULL, 0);
  hooks[1] = NULL;
  ret = ocirun_run_hooks (hooks, 1, "prestart", "{}", NULL, &err);
  CHECK (ret == 0);
  if (err)
    fprintf (stderr, "  %s\n", err->msg);
  ocirun_error_free (&err);
  oci_hook_free (hooks[0]);
  close (42);
}

/* A hook may leave a daemon behind that keeps its stdout open: its exit is
 * what counts, not EOF on the pipes. */
static void
test_background_child (void)
{
  cleanup_free char *pidfile = tmp_path ("daemon.pid");
  cleanup_free char *script = NULL;
  cleanup_free char *pidtext = NULL;
  ocirun_error_t err = NULL;
  oci_hook *hooks[2];
  size_t len;
  double t0;
  int ret;

  xasprintf (&script, "sleep 5 & echo $! > '%s'; exit 0", pidfile);
  hooks[0] = make_hook ("/bin/sh", (const char *const[]){ "sh", "-c", script, NULL }, NULL, 0);
  hooks[1] = NULL;
  alarm (10);
  t0 = now_s ();
  ret = ocirun_run_hooks (hooks, 1, "poststart", "{}", NULL, &err);
  alarm (0);
  CHECK (ret == 0);
  CHECK (now_s () - t0 < 2.0);
  pidtext = read_whole (pidfile, &len);
  if (pidtext)
    kill ((pid_t)atoi (pidtext), SIGKILL);
  ocirun_error_free (&err);
  oci_hook_free (hooks[0]);
}

static void
test_exec_failure (void)
{
  ocirun_error_t err = NULL;
  oci_hook *hooks[2] = { make_hook ("/nonexistent/hook", NULL, NULL, 0), NULL };
  int ret;

  ret = ocirun_run_hooks (hooks, 1, "createContainer", "{}", NULL, &err);
  CHECK (ret == -ENOENT);
  CHECK (err
         && strcmp (err->msg, "createContainer hook #0 (`/nonexistent/hook`): exec: No such file or directory") == 0);
  ocirun_error_free (&err);
  oci_hook_free (hooks[0]);

  /* No hooks: nothing to do. */
  CHECK (ocirun_run_hooks (NULL, 0, "prestart", "{}", NULL, &err) == 0);
}

int
main (void)
{
  if (mkdtemp (tmpdir) == NULL)
    {
      perror ("mkdtemp");
      return 99;
    }

  test_stdin_is_state ();
  test_args_env_exact ();
  test_exit_status ();
  test_timeout ();
  test_big_state_unread ();
  test_no_leaked_fds ();
  test_background_child ();
  test_exec_failure ();

  {
    cleanup_free char *cmd = NULL;
    xasprintf (&cmd, "rm -rf '%s'", tmpdir);
    if (system (cmd) != 0)
      fprintf (stderr, "cannot remove %s\n", tmpdir);
  }
  UNIT_DONE ();
}
