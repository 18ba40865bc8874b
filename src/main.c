#include "config.h"
#include "cli.h"
#include "util.h"

#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct
{
  const char *name;
  cli_command_fn fn;
  const char *summary;
} commands[] = {
  { "checkpoint", cli_cmd_checkpoint, "checkpoint a running container" },
  { "create", cli_cmd_create, "create a container" },
  { "delete", cli_cmd_delete, "delete any resources held by the container" },
  { "events", cli_cmd_events, "display container events and statistics" },
  { "exec", cli_cmd_exec, "execute new process inside the container" },
  { "kill", cli_cmd_kill, "send a signal (default: SIGTERM) to the container's init process" },
  { "list", cli_cmd_list, "list containers started by ocirun with the given root" },
  { "pause", cli_cmd_pause, "suspend all processes inside the container" },
  { "ps", cli_cmd_ps, "display the processes running inside a container" },
  { "restore", cli_cmd_restore, "restore a container from a previous checkpoint" },
  { "resume", cli_cmd_resume, "resume all processes that have been previously paused" },
  { "run", cli_cmd_run, "create and run a container" },
  { "spec", cli_cmd_spec, "create a new specification file" },
  { "start", cli_cmd_start, "execute the user defined process in a created container" },
  { "state", cli_cmd_state, "output the state of a container" },
  { "update", cli_cmd_update, "update container resource constraints" },
  { "features", cli_cmd_features, "show the enabled features" },
  { "check", cli_cmd_check, "validate a bundle without running it" },
};

enum
{
  OPT_ROOT = 256,
  OPT_LOG,
  OPT_LOG_FORMAT,
  OPT_DEBUG,
  OPT_SYSTEMD_CGROUP,
  OPT_ROOTLESS,
  OPT_CRIU,
};

static struct argp_option global_options[] = {
  { "debug", OPT_DEBUG, NULL, 0, "enable debug logging", 0 },
  { "log", OPT_LOG, "FILE", 0, "set the log file to write ocirun logs to (default is stderr)", 0 },
  { "log-format", OPT_LOG_FORMAT, "FORMAT", 0, "set the log format ('text' (default), or 'json')", 0 },
  { "root", OPT_ROOT, "DIR", 0,
    "root directory for storage of container state (this should be located in tmpfs) (default: \"/run/ocirun\")", 0 },
  { "criu", OPT_CRIU, "PATH", 0, "path to the criu binary used for checkpoint and restore (default: \"criu\")", 0 },
  { "systemd-cgroup", OPT_SYSTEMD_CGROUP, NULL, 0,
    "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\"", 0 },
  { "rootless", OPT_ROOTLESS, "VALUE", 0,
    "ignore cgroup permission errors ('true', 'false', or 'auto') (default: auto)", 0 },
  { "help", 'h', NULL, 0, "show help", 0 },
  { "version", 'v', NULL, 0, "print the version", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

struct global_parse
{
  struct cli_global *g;
  int first_arg;
};

static void
print_version (void)
{
  cleanup_error ocirun_error_t err = NULL;
  unsigned major, minor, micro;

  printf ("ocirun version %s\ncommit: %s\nspec: %s\n", PACKAGE_VERSION, GIT_COMMIT, OCI_SPEC_VERSION);
  if (ocirun_seccomp_version (&major, &minor, &micro, &err) == 0)
    printf ("libseccomp: %u.%u.%u\n", major, minor, micro);
}

static char *
help_filter (int key, const char *text, void *input)
{
  char *s = NULL;
  size_t len = 0;
  FILE *f;

  if (key != ARGP_KEY_HELP_POST_DOC)
    return (char *)text;
  f = open_memstream (&s, &len);
  if (f == NULL)
    return (char *)text;
  fputs ("Commands:\n", f);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf (f, "  %-12s%s\n", commands[i].name, commands[i].summary);
  fputs ("\nRun `ocirun COMMAND --help` for the options of a command.", f);
  fclose (f);
  return s;
}

static error_t parse_global (int key, char *arg, struct argp_state *state);

static struct argp global_argp
    = { global_options, parse_global, "COMMAND [ARG...]", "ocirun -- an Open Container Initiative runtime\v", NULL,
        help_filter,    NULL };

static error_t
parse_global (int key, char *arg, struct argp_state *state)
{
  struct global_parse *p = state->input;
  struct cli_global *g = p->g;

  switch (key)
    {
    case OPT_DEBUG:
      g->debug = true;
      break;
    case OPT_LOG:
      g->log_file = arg;
      break;
    case OPT_LOG_FORMAT:
      if (strcmp (arg, "text") == 0)
        g->log_format = OCIRUN_LOG_TEXT;
      else if (strcmp (arg, "json") == 0)
        g->log_format = OCIRUN_LOG_JSON;
      else
        argp_error (state, "unknown log-format `%s`", arg);
      break;
    case OPT_ROOT:
      g->root = arg;
      break;
    case OPT_CRIU:
      g->criu = arg;
      break;
    case OPT_SYSTEMD_CGROUP:
      g->systemd_cgroup = true;
      break;
    case OPT_ROOTLESS:
      if (strcmp (arg, "true") != 0 && strcmp (arg, "false") != 0 && strcmp (arg, "auto") != 0)
        argp_error (state, "invalid value for --rootless: `%s`", arg);
      g->rootless = arg;
      break;
    case 'h':
      argp_state_help (state, stdout, ARGP_HELP_STD_HELP);
      break;
    case 'v':
      print_version ();
      exit (EXIT_SUCCESS);
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &p->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static int
open_log (struct cli_global *g)
{
  g->logger.fd = STDERR_FILENO;
  g->logger.format = g->log_format;
  g->logger.max_level = g->debug ? OCIRUN_LOG_DEBUG : OCIRUN_LOG_WARNING;
  if (g->log_file)
    {
      /* Never handed to the container: O_CLOEXEC. */
      int fd = open (g->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0)
        {
          fprintf (stderr, "open log file `%s`: %s\n", g->log_file, strerror (errno));
          return -1;
        }
      g->logger.fd = fd;
    }
  return 0;
}

int
main (int argc, char **argv)
{
  struct cli_global g = { 0 };
  struct global_parse p = { &g, -1 };
  const char *name;
  int ret;

  argp_err_exit_status = CLI_USAGE_EXIT;
  g.rootless = "auto";
  g.criu = "criu";
  g.log_format = OCIRUN_LOG_TEXT;

  if (argp_parse (&global_argp, argc, argv, ARGP_IN_ORDER | ARGP_NO_HELP, NULL, &p) != 0)
    return CLI_USAGE_EXIT;
  if (open_log (&g) < 0)
    return 1;

  if (p.first_arg < 0)
    {
      /* runc without a command prints its help. */
      argp_help (&global_argp, stdout, ARGP_HELP_STD_HELP, (char *)"ocirun");
      return 0;
    }

  name = argv[p.first_arg];
  if (strcmp (name, "help") == 0 || strcmp (name, "h") == 0)
    {
      if (p.first_arg + 1 >= argc)
        {
          argp_help (&global_argp, stdout, ARGP_HELP_STD_HELP, (char *)"ocirun");
          return 0;
        }
      /* `ocirun help CMD` is `ocirun CMD --help`. */
      name = argv[p.first_arg + 1];
      argv[p.first_arg + 1] = (char *)"--help";
      argv[p.first_arg] = (char *)name;
      argc = p.first_arg + 2;
    }

  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp (commands[i].name, name) == 0)
      {
        cleanup_free char *argv0 = NULL;
        /* argp prints argv[0] in usage and errors: "ocirun kill". */
        xasprintf (&argv0, "ocirun %s", name);
        argv[p.first_arg] = argv0;
        ret = commands[i].fn (&g, argc - p.first_arg, argv + p.first_arg);
        argv[p.first_arg] = (char *)name;
        free (g.default_root);
        if (g.log_file)
          close (g.logger.fd);
        return ret;
      }

  return cli_error (&g, "No help topic for '%s'", name);
}
