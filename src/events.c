#include "config.h"
#include "cli.h"
#include "util.h"

enum
{
  OPT_INTERVAL = 256,
  OPT_STATS,
};

struct events_opts
{
  const char *interval;
  bool stats;
  int first_arg;
};

static struct argp_option options[] = {
  { "interval", OPT_INTERVAL, "DURATION", 0, "set the stats collection interval (default: 5s)", 0 },
  { "stats", OPT_STATS, NULL, 0, "display the container's stats then exit", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct events_opts *o = state->input;

  switch (key)
    {
    case OPT_INTERVAL:
      o->interval = arg;
      break;
    case OPT_STATS:
      o->stats = true;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp events_argp
    = { options,
        parse_opt,
        "CONTAINER-ID",
        "Display container events such as OOM notifications, and cpu, memory and IO usage statistics.",
        NULL,
        NULL,
        NULL };

int
cli_cmd_events (struct cli_global *g, int argc, char **argv)
{
  struct events_opts o = { "5s", false, -1 };
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;

  if (argp_parse (&events_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "events", o.first_arg < 0 ? 0 : argc - o.first_arg, 1, 1))
    return 1;
  if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0)
    return cli_fail (g, &err);
  return cli_not_implemented (g, "events");
}
