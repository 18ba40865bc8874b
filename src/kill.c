#include "config.h"
#include "cli.h"
#include "util.h"

#include <signal.h>

struct kill_opts
{
  bool all;
  int first_arg;
};

static struct argp_option options[] = {
  { "all", 'a', NULL, 0, "send the specified signal to all processes inside the container", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct kill_opts *o = state->input;

  switch (key)
    {
    case 'a':
      o->all = true;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp kill_argp
    = { options,
        parse_opt,
        "CONTAINER-ID [SIGNAL]",
        "Send SIGNAL (default: SIGTERM) to the container's init process. SIGNAL is a name (KILL, SIGKILL, kill, "
        "RTMIN+3) or a number.",
        NULL,
        NULL,
        NULL };

int
cli_cmd_kill (struct cli_global *g, int argc, char **argv)
{
  struct kill_opts o = { false, -1 };
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;
  int nargs, signo = SIGTERM;

  if (argp_parse (&kill_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  nargs = o.first_arg < 0 ? 0 : argc - o.first_arg;
  if (cli_check_args (g, "kill", nargs, 1, 2))
    return 1;

  if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0
      || (nargs == 2 && ocirun_parse_signal (argv[o.first_arg + 1], &signo, &err) < 0)
      || ocirun_container_kill (&ctx, signo, o.all, &err) < 0)
    return cli_fail (g, &err);
  return 0;
}
