#include "config.h"
#include "cli.h"
#include "util.h"

#include <string.h>

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  if (key != ARGP_KEY_ARG)
    return ARGP_ERR_UNKNOWN;
  CLI_STOP_AT_ARG (state, (int *)state->input);
  return 0;
}

static const struct argp state_argp
    = { NULL, parse_opt, "CONTAINER-ID", "Output the state of a container as JSON.", NULL, NULL, NULL };

int
cli_cmd_state (struct cli_global *g, int argc, char **argv)
{
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;
  cleanup_free char *json = NULL;
  cleanup_free char *pretty = NULL;
  oci_runc_state *st = NULL;
  int first = -1;
  size_t len = 0;

  if (argp_parse (&state_argp, argc, argv, ARGP_IN_ORDER, NULL, &first) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "state", first < 0 ? 0 : argc - first, 1, 1))
    return 1;
  if (cli_init_context (g, &ctx, argv[first], &err) < 0 || ocirun_container_state (&ctx, &st, &err) < 0)
    return cli_fail (g, &err);

  json = oci_runc_state_to_json (st, 0, &len);
  oci_runc_state_free (st);
  if (json == NULL || (pretty = cli_json_reindent (json, "  ")) == NULL)
    return cli_error (g, "cannot serialise the state of `%s`", argv[first]);
  /* runc writes json.MarshalIndent(state, "", "  ") with no newline. */
  return cli_print (g, pretty, false);
}
