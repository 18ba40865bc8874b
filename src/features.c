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

static const struct argp features_argp
    = { NULL, parse_opt, "",  "Show the features this build of ocirun supports (runtime-spec features.json).",
        NULL, NULL,      NULL };

int
cli_cmd_features (struct cli_global *g, int argc, char **argv)
{
  cleanup_free char *json = NULL;
  cleanup_free char *pretty = NULL;
  oci_features *f;
  int first = -1;
  size_t len = 0;

  if (argp_parse (&features_argp, argc, argv, ARGP_IN_ORDER, NULL, &first) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "features", first < 0 ? 0 : argc - first, 0, 0))
    return 1;

  f = ocirun_features ();
  if (f == NULL)
    return cli_error (g, "cannot build the features document");
  json = oci_features_to_json (f, 0, &len);
  oci_features_free (f);
  /* runc: json.MarshalIndent(features, "", "    ") and a newline. */
  if (json == NULL || (pretty = cli_json_reindent (json, "    ")) == NULL)
    return cli_error (g, "cannot serialise the features document");
  return cli_print (g, pretty, true);
}
