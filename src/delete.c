#include "config.h"
#include "cli.h"
#include "util.h"

struct delete_opts
{
  bool force;
  int first_arg;
};

static struct argp_option options[] = {
  { "force", 'f', NULL, 0, "Forcibly deletes the container if it is still running (uses SIGKILL)", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct delete_opts *o = state->input;

  switch (key)
    {
    case 'f':
      o->force = true;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp delete_argp = {
  options, parse_opt, "CONTAINER-ID", "Delete the resources held by a stopped (or, with --force, any) container.", NULL,
  NULL,    NULL
};

int
cli_cmd_delete (struct cli_global *g, int argc, char **argv)
{
  struct delete_opts o = { false, -1 };
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;

  if (argp_parse (&delete_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "delete", o.first_arg < 0 ? 0 : argc - o.first_arg, 1, 1))
    return 1;
  if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0 || ocirun_container_delete (&ctx, o.force, &err) < 0)
    return cli_fail (g, &err);
  return 0;
}
