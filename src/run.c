#include "config.h"
#include "cli.h"
#include "util.h"

enum
{
  OPT_KEEP = 300,
  OPT_NO_SUBREAPER,
};

struct run_opts
{
  struct cli_create_opts create;
  bool detach;
  bool keep;
};

static struct argp_option options[] = {
  { "detach", 'd', NULL, 0, "detach from the container's process", 0 },
  { "keep", OPT_KEEP, NULL, 0, "do not delete the container after it exits", 0 },
  { "no-subreaper", OPT_NO_SUBREAPER, NULL, 0,
    "disable the use of the subreaper used to reap reparented processes (accepted for compatibility; ocirun always "
    "waits for the container's process itself)",
    0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct run_opts *o = state->input;

  switch (key)
    {
    case 'd':
      o->detach = true;
      break;
    case OPT_KEEP:
      o->keep = true;
      break;
    case OPT_NO_SUBREAPER:
      break;
    case ARGP_KEY_INIT:
      state->child_inputs[0] = &o->create;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->create.first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp_child children[] = {
  { &cli_create_argp, 0, NULL, 0 },
  { NULL, 0, NULL, 0 },
};

static const struct argp run_argp = { options, parse_opt, NULL, "Create and run a container.", children, NULL, NULL };

int
cli_cmd_run (struct cli_global *g, int argc, char **argv)
{
  struct run_opts o = { .create = { .first_arg = -1 } };
  struct ocirun_context ctx;
  cleanup_free char *bundle = NULL;
  cleanup_error ocirun_error_t err = NULL;
  int nargs, status = 0;

  if (argp_parse (&run_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  nargs = o.create.first_arg < 0 ? 0 : argc - o.create.first_arg;
  if (cli_check_args (g, "run", nargs, 1, 1))
    return 1;

  if (cli_init_context (g, &ctx, argv[o.create.first_arg], &err) < 0
      || cli_create_opts_apply (&o.create, &ctx, &bundle, &err) < 0)
    return cli_fail (g, &err);
  ctx.detach = o.detach;
  ctx.keep = o.keep;
  if (ocirun_container_run (&ctx, &status, &err) < 0)
    return cli_fail (g, &err);
  /* Like runc: the container's exit status is ours (0 when detached). */
  return o.detach ? 0 : status;
}
