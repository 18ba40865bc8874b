#include "config.h"
#include "cli.h"
#include "util.h"

#include <limits.h>
#include <string.h>

enum
{
  OPT_CONSOLE_SOCKET = 256,
  OPT_CWD,
  OPT_PID_FILE,
  OPT_PROCESS_LABEL,
  OPT_APPARMOR,
  OPT_NO_NEW_PRIVS,
  OPT_PRESERVE_FDS,
  OPT_CGROUP,
  OPT_IGNORE_PAUSED,
};

/* Everything runc exec accepts; repeated options (--env, --cap, --cgroup,
 * --additional-gids) are kept in order. */
struct exec_opts
{
  const char *console_socket, *cwd, *user, *process, *pid_file, *process_label, *apparmor;
  char **env, **caps, **cgroups, **additional_gids;
  size_t n_env, n_caps, n_cgroups, n_additional_gids;
  bool tty, detach, no_new_privs, ignore_paused;
  int preserve_fds;
  int first_arg;
};

static struct argp_option options[] = {
  { "console-socket", OPT_CONSOLE_SOCKET, "PATH", 0,
    "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's "
    "pseudoterminal",
    0 },
  { "cwd", OPT_CWD, "DIR", 0, "current working directory in the container", 0 },
  { "env", 'e', "VAR=VALUE", 0, "set environment variables", 0 },
  { "tty", 't', NULL, 0, "allocate a pseudo-TTY", 0 },
  { "user", 'u', "UID[:GID]", 0, "UID (format: <uid>[:<gid>])", 0 },
  { "additional-gids", 'g', "GID", 0, "additional gids", 0 },
  { "process", 'p', "FILE", 0, "path to the process.json", 0 },
  { "detach", 'd', NULL, 0, "detach from the container's process", 0 },
  { "pid-file", OPT_PID_FILE, "FILE", 0, "specify the file to write the process id to", 0 },
  { "process-label", OPT_PROCESS_LABEL, "LABEL", 0,
    "set the asm process label for the process commonly used with selinux", 0 },
  { "apparmor", OPT_APPARMOR, "PROFILE", 0, "set the apparmor profile for the process", 0 },
  { "no-new-privs", OPT_NO_NEW_PRIVS, NULL, 0, "set the no new privileges value for the process", 0 },
  { "cap", 'c', "CAP", 0, "add a capability to the bounding set for the process", 0 },
  { "preserve-fds", OPT_PRESERVE_FDS, "N", 0,
    "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)", 0 },
  { "cgroup", OPT_CGROUP, "[CONTROLLER:]PATH", 0,
    "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.", 0 },
  { "ignore-paused", OPT_IGNORE_PAUSED, NULL, 0, "allow exec in a paused container", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static void
push (char ***v, size_t *n, char *s)
{
  *v = xrealloc (*v, (*n + 2) * sizeof (char *));
  (*v)[(*n)++] = s;
  (*v)[*n] = NULL;
}

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct exec_opts *o = state->input;
  long n;

  switch (key)
    {
    case OPT_CONSOLE_SOCKET:
      o->console_socket = arg;
      break;
    case OPT_CWD:
      o->cwd = arg;
      break;
    case 'e':
      push (&o->env, &o->n_env, arg);
      break;
    case 't':
      o->tty = true;
      break;
    case 'u':
      o->user = arg;
      break;
    case 'g':
      push (&o->additional_gids, &o->n_additional_gids, arg);
      break;
    case 'p':
      o->process = arg;
      break;
    case 'd':
      o->detach = true;
      break;
    case OPT_PID_FILE:
      o->pid_file = arg;
      break;
    case OPT_PROCESS_LABEL:
      o->process_label = arg;
      break;
    case OPT_APPARMOR:
      o->apparmor = arg;
      break;
    case OPT_NO_NEW_PRIVS:
      o->no_new_privs = true;
      break;
    case 'c':
      push (&o->caps, &o->n_caps, arg);
      break;
    case OPT_PRESERVE_FDS:
      if (cli_parse_uint (arg, &n) < 0 || n > INT_MAX - 3)
        argp_error (state, "invalid value `%s` for --preserve-fds", arg);
      o->preserve_fds = (int)n;
      break;
    case OPT_CGROUP:
      push (&o->cgroups, &o->n_cgroups, arg);
      break;
    case OPT_IGNORE_PAUSED:
      o->ignore_paused = true;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp exec_argp = { options,
                                       parse_opt,
                                       "CONTAINER-ID COMMAND [ARG...]\n-p PROCESS.JSON CONTAINER-ID",
                                       "Execute a new process inside the container.",
                                       NULL,
                                       NULL,
                                       NULL };

int
cli_cmd_exec (struct cli_global *g, int argc, char **argv)
{
  struct exec_opts o = { .first_arg = -1 };
  struct ocirun_exec_request req;
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;
  int nargs, ret, status = 0;

  if (argp_parse (&exec_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  nargs = o.first_arg < 0 ? 0 : argc - o.first_arg;
  ret = cli_check_args (g, "exec", nargs, 1, -1);
  if (ret == 0 && o.process == NULL && nargs < 2)
    ret = cli_error (g, "exec: a command to run is required (or -p PROCESS.JSON)");
  if (ret != 0)
    goto out;

  memset (&req, 0, sizeof req);
  req.process_file = o.process;
  req.args = argv + o.first_arg + 1;
  req.n_args = (size_t)(nargs - 1);
  req.env = o.env;
  req.n_env = o.n_env;
  req.cwd = o.cwd;
  req.user = o.user;
  req.additional_gids = o.additional_gids;
  req.n_additional_gids = o.n_additional_gids;
  req.caps = o.caps;
  req.n_caps = o.n_caps;
  req.cgroups = o.cgroups;
  req.n_cgroups = o.n_cgroups;
  req.process_label = o.process_label;
  req.apparmor = o.apparmor;
  req.console_socket = o.console_socket;
  req.pid_file = o.pid_file;
  req.preserve_fds = o.preserve_fds;
  req.tty = o.tty;
  req.detach = o.detach;
  req.no_new_privs = o.no_new_privs;
  req.ignore_paused = o.ignore_paused;

  if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0 || ocirun_container_exec (&ctx, &req, &status, &err) < 0)
    {
      ret = cli_fail (g, &err);
      /* runc exits 255 when the process could not be started (engines map
       * the message to 126/127); other failures are 1. */
      if (status == 255)
        ret = 255;
    }
  else
    /* Like runc: the process's exit status is ours (0 when detached). */
    ret = o.detach ? 0 : status;

out:
  free (o.env);
  free (o.caps);
  free (o.cgroups);
  free (o.additional_gids);
  return ret;
}
