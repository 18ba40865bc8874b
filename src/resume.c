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

static const struct argp resume_argp
    = { NULL, parse_opt, "CONTAINER-ID", "Resume all processes that have been previously paused.", NULL, NULL, NULL };

int
cli_cmd_resume (struct cli_global *g, int argc, char **argv)
{
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;
  int first = -1;

  if (argp_parse (&resume_argp, argc, argv, ARGP_IN_ORDER, NULL, &first) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "resume", first < 0 ? 0 : argc - first, 1, 1))
    return 1;
  if (cli_init_context (g, &ctx, argv[first], &err) < 0)
    return cli_fail (g, &err);
  if (ocirun_container_resume (&ctx, &err) < 0)
    return cli_fail (g, &err);
  return 0;
}
