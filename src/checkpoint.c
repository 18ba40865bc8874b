#include "config.h"
#include "cli.h"
#include "util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum
{
  OPT_PARENT_PATH = 256,
  OPT_LEAVE_RUNNING,
  OPT_STATUS_FD,
  OPT_PAGE_SERVER,
  OPT_PRE_DUMP,
};

struct checkpoint_opts
{
  struct ocirun_criu_request req;
  const char *status_fd;
  int first_arg;
};

static struct argp_option options[] = {
  { "image-path", CLI_OPT_IMAGE_PATH, "DIR", 0, "path for saving criu image files", 0 },
  { "work-path", CLI_OPT_WORK_PATH, "DIR", 0, "path for saving work files and logs", 0 },
  { "parent-path", OPT_PARENT_PATH, "DIR", 0, "path for previous criu image files in pre-dump", 0 },
  { "leave-running", OPT_LEAVE_RUNNING, NULL, 0, "leave the process running after checkpointing", 0 },
  { "tcp-established", CLI_OPT_TCP_ESTABLISHED, NULL, 0, "allow open tcp connections", 0 },
  { "ext-unix-sk", CLI_OPT_EXT_UNIX_SK, NULL, 0, "allow external unix sockets", 0 },
  { "shell-job", CLI_OPT_SHELL_JOB, NULL, 0, "allow shell jobs", 0 },
  { "lazy-pages", CLI_OPT_LAZY_PAGES, NULL, 0, "use userfaultfd to lazily restore memory pages", 0 },
  { "status-fd", OPT_STATUS_FD, "FD", 0, "criu writes \\0 to this FD once lazy-pages is ready (default: -1)", 0 },
  { "page-server", OPT_PAGE_SERVER, "ADDRESS:PORT", 0, "ADDRESS:PORT of the page server", 0 },
  { "file-locks", CLI_OPT_FILE_LOCKS, NULL, 0, "handle file locks, for safety", 0 },
  { "pre-dump", OPT_PRE_DUMP, NULL, 0,
    "dump container's memory information only, leave the container running after this", 0 },
  { "manage-cgroups-mode", CLI_OPT_MANAGE_CGROUPS_MODE, "MODE", 0,
    "cgroups mode: 'soft' (default), 'full' and 'strict'", 0 },
  { "empty-ns", CLI_OPT_EMPTY_NS, "NS", 0, "create a namespace, but don't restore its properties", 0 },
  { "auto-dedup", CLI_OPT_AUTO_DEDUP, NULL, 0, "enable auto deduplication of memory images", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct checkpoint_opts *o = state->input;

  if (cli_criu_opt (key, arg, &o->req))
    return 0;
  switch (key)
    {
    case OPT_PARENT_PATH:
      o->req.parent_path = arg;
      break;
    case OPT_LEAVE_RUNNING:
      o->req.leave_running = true;
      break;
    case OPT_STATUS_FD:
      o->status_fd = arg;
      break;
    case OPT_PAGE_SERVER:
      o->req.page_server = arg;
      break;
    case OPT_PRE_DUMP:
      o->req.pre_dump = true;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp checkpoint_argp
    = { options, parse_opt, "CONTAINER-ID", "Checkpoint a running container with criu.", NULL, NULL, NULL };

static int
checkpoint (struct cli_global *g, struct checkpoint_opts *o, char **argv)
{
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;

  o->req.status_fd = -1;
  if (o->status_fd)
    {
      char *end;
      long fd = strtol (o->status_fd, &end, 10);
      if (*o->status_fd == '\0' || *end || fd < 0 || fd > INT_MAX)
        return cli_error (g, "--status-fd `%s`: not a file descriptor", o->status_fd);
      o->req.status_fd = (int)fd;
    }
  if (cli_init_context (g, &ctx, argv[o->first_arg], &err) < 0 || ocirun_container_checkpoint (&ctx, &o->req, &err) < 0)
    return cli_fail (g, &err);
  return 0;
}

int
cli_cmd_checkpoint (struct cli_global *g, int argc, char **argv)
{
  struct checkpoint_opts o = { .first_arg = -1 };
  int ret;

  if (argp_parse (&checkpoint_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  ret = cli_check_args (g, "checkpoint", o.first_arg < 0 ? 0 : argc - o.first_arg, 1, 1);
  if (ret == 0)
    ret = checkpoint (g, &o, argv);
  free (o.req.empty_ns);
  return ret;
}
