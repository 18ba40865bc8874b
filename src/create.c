#include "config.h"
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum
{
  OPT_CONSOLE_SOCKET = 256,
  OPT_PID_FILE,
  OPT_NO_PIVOT,
  OPT_NO_NEW_KEYRING,
  OPT_PRESERVE_FDS,
};

static struct argp_option options[] = {
  { "bundle", 'b', "DIR", 0, "path to the root of the bundle directory, defaults to the current directory", 0 },
  { "console-socket", OPT_CONSOLE_SOCKET, "PATH", 0,
    "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's "
    "pseudoterminal",
    0 },
  { "pid-file", OPT_PID_FILE, "FILE", 0, "specify the file to write the process id to", 0 },
  { "no-pivot", OPT_NO_PIVOT, NULL, 0,
    "do not use pivot root to jail process inside rootfs. This should be used whenever the rootfs is on top of a "
    "ramdisk",
    0 },
  { "no-new-keyring", OPT_NO_NEW_KEYRING, NULL, 0,
    "do not create a new session keyring for the container. This will cause the container to inherit the calling "
    "processes session key",
    0 },
  { "preserve-fds", OPT_PRESERVE_FDS, "N", 0,
    "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct cli_create_opts *o = state->input;
  long n;

  switch (key)
    {
    case 'b':
      o->bundle = arg;
      break;
    case OPT_CONSOLE_SOCKET:
      o->console_socket = arg;
      break;
    case OPT_PID_FILE:
      o->pid_file = arg;
      break;
    case OPT_NO_PIVOT:
      o->no_pivot = true;
      break;
    case OPT_NO_NEW_KEYRING:
      o->no_new_keyring = true;
      break;
    case OPT_PRESERVE_FDS:
      if (cli_parse_uint (arg, &n) < 0 || n > INT_MAX - 3)
        argp_error (state, "invalid value `%s` for --preserve-fds", arg);
      o->preserve_fds = (int)n;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

const struct argp cli_create_argp
    = { options, parse_opt, "CONTAINER-ID", "Create a container from the bundle; `start` runs its process.", NULL,
        NULL,    NULL };

int
cli_create_opts_apply (const struct cli_create_opts *o, struct ocirun_context *ctx, char **bundle_buf,
                       ocirun_error_t *err)
{
  if (o->bundle)
    {
      /* The state records where the bundle is; a relative path would mean
       * nothing to later commands run from another directory. */
      *bundle_buf = realpath (o->bundle, NULL);
      if (*bundle_buf == NULL)
        return ocirun_make_error (err, errno, "bundle `%s`", o->bundle);
      ctx->bundle = *bundle_buf;
    }
  ctx->console_socket = o->console_socket;
  ctx->pid_file = o->pid_file;
  ctx->no_pivot = o->no_pivot;
  ctx->no_new_keyring = o->no_new_keyring;
  ctx->preserve_fds = o->preserve_fds;
  ctx->notify_socket = getenv ("NOTIFY_SOCKET");
  return 0;
}

int
cli_cmd_create (struct cli_global *g, int argc, char **argv)
{
  struct cli_create_opts o = { .first_arg = -1 };
  struct ocirun_context ctx;
  cleanup_free char *bundle = NULL;
  cleanup_error ocirun_error_t err = NULL;
  int nargs;

  if (argp_parse (&cli_create_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  nargs = o.first_arg < 0 ? 0 : argc - o.first_arg;
  if (cli_check_args (g, "create", nargs, 1, 1))
    return 1;

  if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0 || cli_create_opts_apply (&o, &ctx, &bundle, &err) < 0
      || ocirun_container_create (&ctx, &err) < 0)
    return cli_fail (g, &err);
  return 0;
}
