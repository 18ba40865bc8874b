#include "config.h"
#include "cli.h"
#include "util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum
{
  OPT_IMAGE_PATH = 256,
  OPT_WORK_PATH,
  OPT_PARENT_PATH,
  OPT_LEAVE_RUNNING,
  OPT_TCP_ESTABLISHED,
  OPT_EXT_UNIX_SK,
  OPT_SHELL_JOB,
  OPT_LAZY_PAGES,
  OPT_STATUS_FD,
  OPT_PAGE_SERVER,
  OPT_FILE_LOCKS,
  OPT_PRE_DUMP,
  OPT_MANAGE_CGROUPS_MODE,
  OPT_EMPTY_NS,
  OPT_AUTO_DEDUP,
};

struct checkpoint_opts
{
  const char *image_path, *work_path, *parent_path, *status_fd, *page_server, *manage_cgroups_mode;
  char **empty_ns;
  size_t n_empty_ns;
  bool leave_running, tcp_established, ext_unix_sk, shell_job, lazy_pages, file_locks, pre_dump, auto_dedup;
  int first_arg;
};

static struct argp_option options[] = {
  { "image-path", OPT_IMAGE_PATH, "DIR", 0, "path for saving criu image files", 0 },
  { "work-path", OPT_WORK_PATH, "DIR", 0, "path for saving work files and logs", 0 },
  { "parent-path", OPT_PARENT_PATH, "DIR", 0, "path for previous criu image files in pre-dump", 0 },
  { "leave-running", OPT_LEAVE_RUNNING, NULL, 0, "leave the process running after checkpointing", 0 },
  { "tcp-established", OPT_TCP_ESTABLISHED, NULL, 0, "allow open tcp connections", 0 },
  { "ext-unix-sk", OPT_EXT_UNIX_SK, NULL, 0, "allow external unix sockets", 0 },
  { "shell-job", OPT_SHELL_JOB, NULL, 0, "allow shell jobs", 0 },
  { "lazy-pages", OPT_LAZY_PAGES, NULL, 0, "use userfaultfd to lazily restore memory pages", 0 },
  { "status-fd", OPT_STATUS_FD, "FD", 0, "criu writes \\0 to this FD once lazy-pages is ready (default: -1)", 0 },
  { "page-server", OPT_PAGE_SERVER, "ADDRESS:PORT", 0, "ADDRESS:PORT of the page server", 0 },
  { "file-locks", OPT_FILE_LOCKS, NULL, 0, "handle file locks, for safety", 0 },
  { "pre-dump", OPT_PRE_DUMP, NULL, 0,
    "dump container's memory information only, leave the container running after this", 0 },
  { "manage-cgroups-mode", OPT_MANAGE_CGROUPS_MODE, "MODE", 0, "cgroups mode: 'soft' (default), 'full' and 'strict'",
    0 },
  { "empty-ns", OPT_EMPTY_NS, "NS", 0, "create a namespace, but don't restore its properties", 0 },
  { "auto-dedup", OPT_AUTO_DEDUP, NULL, 0, "enable auto deduplication of memory images", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct checkpoint_opts *o = state->input;

  switch (key)
    {
    case OPT_IMAGE_PATH:
      o->image_path = arg;
      break;
    case OPT_WORK_PATH:
      o->work_path = arg;
      break;
    case OPT_PARENT_PATH:
      o->parent_path = arg;
      break;
    case OPT_LEAVE_RUNNING:
      o->leave_running = true;
      break;
    case OPT_TCP_ESTABLISHED:
      o->tcp_established = true;
      break;
    case OPT_EXT_UNIX_SK:
      o->ext_unix_sk = true;
      break;
    case OPT_SHELL_JOB:
      o->shell_job = true;
      break;
    case OPT_LAZY_PAGES:
      o->lazy_pages = true;
      break;
    case OPT_STATUS_FD:
      o->status_fd = arg;
      break;
    case OPT_PAGE_SERVER:
      o->page_server = arg;
      break;
    case OPT_FILE_LOCKS:
      o->file_locks = true;
      break;
    case OPT_PRE_DUMP:
      o->pre_dump = true;
      break;
    case OPT_MANAGE_CGROUPS_MODE:
      o->manage_cgroups_mode = arg;
      break;
    case OPT_EMPTY_NS:
      o->empty_ns = xrealloc (o->empty_ns, (o->n_empty_ns + 1) * sizeof (char *));
      o->empty_ns[o->n_empty_ns++] = arg;
      break;
    case OPT_AUTO_DEDUP:
      o->auto_dedup = true;
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

int
cli_cmd_checkpoint (struct cli_global *g, int argc, char **argv)
{
  struct checkpoint_opts o;
  struct ocirun_context ctx;
  struct ocirun_criu_request req;
  cleanup_error ocirun_error_t err = NULL;
  int ret;

  memset (&o, 0, sizeof o);
  o.first_arg = -1;
  if (argp_parse (&checkpoint_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  ret = cli_check_args (g, "checkpoint", o.first_arg < 0 ? 0 : argc - o.first_arg, 1, 1);
  if (ret == 0)
    {
      memset (&req, 0, sizeof req);
      req.image_path = o.image_path;
      req.work_path = o.work_path;
      req.parent_path = o.parent_path;
      req.manage_cgroups_mode = o.manage_cgroups_mode;
      req.page_server = o.page_server;
      req.empty_ns = o.empty_ns;
      req.n_empty_ns = o.n_empty_ns;
      req.status_fd = -1;
      if (o.status_fd)
        {
          char *end;
          long fd = strtol (o.status_fd, &end, 10);
          if (*o.status_fd == '\0' || *end || fd < 0 || fd > INT_MAX)
            {
              free (o.empty_ns);
              return cli_error (g, "--status-fd `%s`: not a file descriptor", o.status_fd);
            }
          req.status_fd = (int)fd;
        }
      req.leave_running = o.leave_running;
      req.pre_dump = o.pre_dump;
      req.tcp_established = o.tcp_established;
      req.ext_unix_sk = o.ext_unix_sk;
      req.shell_job = o.shell_job;
      req.file_locks = o.file_locks;
      req.auto_dedup = o.auto_dedup;
      req.lazy_pages = o.lazy_pages;
      if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0 || ocirun_container_checkpoint (&ctx, &req, &err) < 0)
        ret = cli_fail (g, &err);
    }
  free (o.empty_ns);
  return ret;
}
