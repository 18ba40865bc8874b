#include "config.h"
#include "cli.h"
#include "util.h"

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  if (key != ARGP_KEY_ARG)
    return ARGP_ERR_UNKNOWN;
  CLI_STOP_AT_ARG (state, (int *)state->input);
  return 0;
}

static const struct argp pause_argp
    = { NULL, parse_opt, "CONTAINER-ID", "Suspend all processes inside the container.", NULL, NULL, NULL };

int
cli_cmd_pause (struct cli_global *g, int argc, char **argv)
{
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;
  int first = -1;

  if (argp_parse (&pause_argp, argc, argv, ARGP_IN_ORDER, NULL, &first) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "pause", first < 0 ? 0 : argc - first, 1, 1))
    return 1;
  if (cli_init_context (g, &ctx, argv[first], &err) < 0)
    return cli_fail (g, &err);
  if (ocirun_container_pause (&ctx, &err) < 0)
    return cli_fail (g, &err);
  return 0;
}
