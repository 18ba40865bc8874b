#include "config.h"
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct ps_opts
{
  const char *format;
  int first_arg;
};

static struct argp_option options[] = {
  { "format", 'f', "FORMAT", 0, "select one of: table or json (default: \"table\")", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct ps_opts *o = state->input;

  switch (key)
    {
    case 'f':
      o->format = arg;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp ps_argp
    = { options,
        parse_opt,
        "CONTAINER-ID [PS-OPTION...]",
        "Display the processes running inside a container: ps(1) output (default options: -ef) limited to the "
        "container's processes, or with --format json the array of their pids.",
        NULL,
        NULL,
        NULL };

/* Runs ps with the user's options (no shell) and returns its whole stdout. */
static int
run_ps (char **ps_args, int n, char **out, ocirun_error_t *err)
{
  cleanup_free char **argv = xmalloc0 ((size_t)(n + 3) * sizeof (char *));
  cleanup_close int rfd = -1;
  int fds[2], status;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  pid_t pid;

  argv[0] = (char *)"ps";
  if (n == 0)
    argv[1] = (char *)"-ef";
  else
    for (int i = 0; i < n; i++)
      argv[i + 1] = ps_args[i];

  if (pipe2 (fds, O_CLOEXEC) < 0)
    return ocirun_make_error (err, errno, "pipe");
  rfd = fds[0];
  fflush (stdout);
  pid = fork ();
  if (pid < 0)
    {
      close (fds[1]);
      return ocirun_make_error (err, errno, "fork");
    }
  if (pid == 0)
    {
      if (dup2 (fds[1], STDOUT_FILENO) < 0)
        _exit (127);
      execvp ("ps", argv);
      _exit (127);
    }
  close (fds[1]);

  for (;;)
    {
      ssize_t r;
      if (len + 4096 + 1 > cap)
        {
          cap = (len + 4096 + 1) * 2;
          buf = xrealloc (buf, cap);
        }
      r = read (rfd, buf + len, cap - len - 1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      len += (size_t)r;
    }
  buf[len] = '\0';

  if (TEMP_FAILURE_RETRY_INT (waitpid (pid, &status, 0)) < 0)
    {
      free (buf);
      return ocirun_make_error (err, errno, "waitpid");
    }
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      free (buf);
      return ocirun_make_error (err, 0, "ps exited with status %d",
                                WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status));
    }
  *out = buf;
  return 0;
}

/* The fields of a line separated by blanks, like Go's strings.Fields. */
static int
nth_field (const char *line, int n, char *dst, size_t dst_len)
{
  int i = 0;
  const char *p = line;

  for (;;)
    {
      size_t l;
      while (*p == ' ' || *p == '\t')
        p++;
      if (*p == '\0' || *p == '\n')
        return -1;
      l = strcspn (p, " \t\n");
      if (i++ == n)
        {
          if (l >= dst_len)
            return -1;
          memcpy (dst, p, l);
          dst[l] = '\0';
          return 0;
        }
      p += l;
    }
}

static int
pid_index (const char *header)
{
  char field[64];
  for (int i = 0; nth_field (header, i, field, sizeof field) == 0; i++)
    if (strcmp (field, "PID") == 0)
      return i;
  return -1;
}

static int
print_filtered (struct cli_global *g, char *out, const pid_t *pids, size_t n_pids)
{
  char *line, *save = NULL;
  int idx;

  line = strtok_r (out, "\n", &save);
  if (line == NULL || (idx = pid_index (line)) < 0)
    return cli_error (g, "couldn't find PID field in ps output");
  printf ("%s\n", line);
  while ((line = strtok_r (NULL, "\n", &save)) != NULL)
    {
      char field[64];
      long v;

      if (nth_field (line, idx, field, sizeof field) < 0 || cli_parse_uint (field, &v) < 0)
        return cli_error (g, "unable to parse pid: `%s`", line);
      for (size_t i = 0; i < n_pids; i++)
        if (pids[i] == (pid_t)v)
          {
            printf ("%s\n", line);
            break;
          }
    }
  return cli_print (g, "", false);
}

int
cli_cmd_ps (struct cli_global *g, int argc, char **argv)
{
  struct ps_opts o = { "table", -1 };
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;
  cleanup_free pid_t *pids = NULL;
  cleanup_free char *out = NULL;
  size_t n = 0;
  int nargs;

  if (argp_parse (&ps_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  nargs = o.first_arg < 0 ? 0 : argc - o.first_arg;
  if (cli_check_args (g, "ps", nargs, 1, -1))
    return 1;
  if (strcmp (o.format, "table") != 0 && strcmp (o.format, "json") != 0)
    return cli_error (g, "invalid format option");

  if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0 || ocirun_container_pids (&ctx, &pids, &n, &err) < 0)
    return cli_fail (g, &err);

  if (strcmp (o.format, "json") == 0)
    {
      if (n == 0)
        return cli_print (g, "null", true);
      putchar ('[');
      for (size_t i = 0; i < n; i++)
        printf ("%s%d", i ? "," : "", (int)pids[i]);
      return cli_print (g, "]", true);
    }

  if (run_ps (argv + o.first_arg + 1, nargs - 1, &out, &err) < 0)
    return cli_fail (g, &err);
  return print_filtered (g, out, pids, n);
}
