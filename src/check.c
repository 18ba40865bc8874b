#include "config.h"
#include "cli.h"
#include "util.h"

struct check_opts
{
  const char *bundle;
  int first_arg;
};

static struct argp_option options[] = {
  { "bundle", 'b', "DIR", 0, "path to the root of the bundle directory, defaults to the current directory", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct check_opts *o = state->input;

  switch (key)
    {
    case 'b':
      o->bundle = arg;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp check_argp
    = { options,
        parse_opt,
        "",
        "Validate a bundle without creating anything: print every problem in its config.json (one per line) and exit "
        "1 if there is any.",
        NULL,
        NULL,
        NULL };

int
cli_cmd_check (struct cli_global *g, int argc, char **argv)
{
  struct check_opts o = { NULL, -1 };
  struct ocirun_problems problems = { NULL, 0 };
  cleanup_error ocirun_error_t err = NULL;
  int n;

  if (argp_parse (&check_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "check", o.first_arg < 0 ? 0 : argc - o.first_arg, 0, 0))
    return 1;

  n = ocirun_check_bundle (o.bundle, "config.json", cli_rootless (g), &problems, &err);
  if (n < 0)
    return cli_fail (g, &err);
  for (size_t i = 0; i < problems.len; i++)
    printf ("%s\n", problems.msgs[i]);
  ocirun_problems_free (&problems);
  if (n == 0)
    return cli_print (g, "bundle is valid", true);
  printf ("%d problem%s found\n", n, n == 1 ? "" : "s");
  cli_print (g, "", false);
  return 1;
}
