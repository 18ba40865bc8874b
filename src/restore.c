#include "config.h"
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum
{
  OPT_CONSOLE_SOCKET = 256,
  OPT_PID_FILE,
  OPT_NO_SUBREAPER,
  OPT_NO_PIVOT,
  OPT_LSM_PROFILE,
  OPT_LSM_MOUNT_CONTEXT,
};

struct restore_opts
{
  struct ocirun_criu_request req;
  const char *console_socket, *bundle, *pid_file;
  bool detach, no_pivot;
  int first_arg;
};

static struct argp_option options[] = {
  { "console-socket", OPT_CONSOLE_SOCKET, "PATH", 0,
    "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's "
    "pseudoterminal",
    0 },
  { "image-path", CLI_OPT_IMAGE_PATH, "DIR", 0, "path to criu image files for restoring", 0 },
  { "work-path", CLI_OPT_WORK_PATH, "DIR", 0, "path for saving work files and logs", 0 },
  { "tcp-established", CLI_OPT_TCP_ESTABLISHED, NULL, 0, "allow open tcp connections", 0 },
  { "ext-unix-sk", CLI_OPT_EXT_UNIX_SK, NULL, 0, "allow external unix sockets", 0 },
  { "shell-job", CLI_OPT_SHELL_JOB, NULL, 0, "allow shell jobs", 0 },
  { "file-locks", CLI_OPT_FILE_LOCKS, NULL, 0, "handle file locks, for safety", 0 },
  { "manage-cgroups-mode", CLI_OPT_MANAGE_CGROUPS_MODE, "MODE", 0,
    "cgroups mode: 'soft' (default), 'full' and 'strict'", 0 },
  { "bundle", 'b', "DIR", 0, "path to the root of the bundle directory", 0 },
  { "detach", 'd', NULL, 0, "detach from the container's process", 0 },
  { "pid-file", OPT_PID_FILE, "FILE", 0, "specify the file to write the process id to", 0 },
  { "no-subreaper", OPT_NO_SUBREAPER, NULL, 0, "disable the use of the subreaper used to reap reparented processes",
    0 },
  { "no-pivot", OPT_NO_PIVOT, NULL, 0, "do not use pivot root to jail process inside rootfs", 0 },
  { "empty-ns", CLI_OPT_EMPTY_NS, "NS", 0, "create a namespace, but don't restore its properties", 0 },
  { "auto-dedup", CLI_OPT_AUTO_DEDUP, NULL, 0, "enable auto deduplication of memory images", 0 },
  { "lazy-pages", CLI_OPT_LAZY_PAGES, NULL, 0, "use userfaultfd to lazily restore memory pages", 0 },
  { "lsm-profile", OPT_LSM_PROFILE, "TYPE:NAME", 0,
    "Specify an LSM profile to be used during restore in the form of TYPE:NAME.", 0 },
  { "lsm-mount-context", OPT_LSM_MOUNT_CONTEXT, "CONTEXT", 0, "Specify an LSM mount context to be used during restore.",
    0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct restore_opts *o = state->input;

  if (cli_criu_opt (key, arg, &o->req))
    return 0;
  switch (key)
    {
    case OPT_CONSOLE_SOCKET:
      o->console_socket = arg;
      break;
    case 'b':
      o->bundle = arg;
      break;
    case 'd':
      o->detach = true;
      break;
    case OPT_PID_FILE:
      o->pid_file = arg;
      break;
    case OPT_NO_SUBREAPER:
      o->req.no_subreaper = true;
      break;
    case OPT_NO_PIVOT:
      o->no_pivot = true;
      break;
    case OPT_LSM_PROFILE:
      o->req.lsm_profile = arg;
      break;
    case OPT_LSM_MOUNT_CONTEXT:
      o->req.lsm_mount_context = arg;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp restore_argp
    = { options, parse_opt, "CONTAINER-ID", "Restore a container from a previous checkpoint.", NULL, NULL, NULL };

static int
restore (struct cli_global *g, struct restore_opts *o, char **argv)
{
  struct ocirun_context ctx;
  cleanup_free char *bundle = NULL;
  cleanup_error ocirun_error_t err = NULL;
  int status = 0;

  if (cli_init_context (g, &ctx, argv[o->first_arg], &err) < 0)
    return cli_fail (g, &err);
  if (o->bundle && (bundle = realpath (o->bundle, NULL)) == NULL)
    {
      ocirun_make_error (&err, errno, "bundle `%s`", o->bundle);
      return cli_fail (g, &err);
    }
  ctx.bundle = bundle;
  ctx.console_socket = o->console_socket;
  ctx.pid_file = o->pid_file;
  ctx.no_pivot = o->no_pivot;
  ctx.detach = o->detach;
  o->req.status_fd = -1;
  if (ocirun_container_restore (&ctx, &o->req, &status, &err) < 0)
    return cli_fail (g, &err);
  /* As run: the container's exit status is ours (0 when detached). */
  return o->detach ? 0 : status;
}

int
cli_cmd_restore (struct cli_global *g, int argc, char **argv)
{
  struct restore_opts o = { .first_arg = -1 };
  int ret;

  if (argp_parse (&restore_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  ret = cli_check_args (g, "restore", o.first_arg < 0 ? 0 : argc - o.first_arg, 1, 1);
  if (ret == 0)
    ret = restore (g, &o, argv);
  free (o.req.empty_ns);
  return ret;
}
