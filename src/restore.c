#include "config.h"
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum
{
  OPT_CONSOLE_SOCKET = 256,
  OPT_IMAGE_PATH,
  OPT_WORK_PATH,
  OPT_TCP_ESTABLISHED,
  OPT_EXT_UNIX_SK,
  OPT_SHELL_JOB,
  OPT_FILE_LOCKS,
  OPT_MANAGE_CGROUPS_MODE,
  OPT_PID_FILE,
  OPT_NO_SUBREAPER,
  OPT_NO_PIVOT,
  OPT_EMPTY_NS,
  OPT_AUTO_DEDUP,
  OPT_LAZY_PAGES,
  OPT_LSM_PROFILE,
  OPT_LSM_MOUNT_CONTEXT,
};

struct restore_opts
{
  const char *console_socket, *image_path, *work_path, *manage_cgroups_mode, *bundle, *pid_file, *lsm_profile,
      *lsm_mount_context;
  char **empty_ns;
  size_t n_empty_ns;
  bool tcp_established, ext_unix_sk, shell_job, file_locks, detach, no_subreaper, no_pivot, auto_dedup, lazy_pages;
  int first_arg;
};

static struct argp_option options[] = {
  { "console-socket", OPT_CONSOLE_SOCKET, "PATH", 0,
    "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's "
    "pseudoterminal",
    0 },
  { "image-path", OPT_IMAGE_PATH, "DIR", 0, "path to criu image files for restoring", 0 },
  { "work-path", OPT_WORK_PATH, "DIR", 0, "path for saving work files and logs", 0 },
  { "tcp-established", OPT_TCP_ESTABLISHED, NULL, 0, "allow open tcp connections", 0 },
  { "ext-unix-sk", OPT_EXT_UNIX_SK, NULL, 0, "allow external unix sockets", 0 },
  { "shell-job", OPT_SHELL_JOB, NULL, 0, "allow shell jobs", 0 },
  { "file-locks", OPT_FILE_LOCKS, NULL, 0, "handle file locks, for safety", 0 },
  { "manage-cgroups-mode", OPT_MANAGE_CGROUPS_MODE, "MODE", 0, "cgroups mode: 'soft' (default), 'full' and 'strict'",
    0 },
  { "bundle", 'b', "DIR", 0, "path to the root of the bundle directory", 0 },
  { "detach", 'd', NULL, 0, "detach from the container's process", 0 },
  { "pid-file", OPT_PID_FILE, "FILE", 0, "specify the file to write the process id to", 0 },
  { "no-subreaper", OPT_NO_SUBREAPER, NULL, 0, "disable the use of the subreaper used to reap reparented processes",
    0 },
  { "no-pivot", OPT_NO_PIVOT, NULL, 0, "do not use pivot root to jail process inside rootfs", 0 },
  { "empty-ns", OPT_EMPTY_NS, "NS", 0, "create a namespace, but don't restore its properties", 0 },
  { "auto-dedup", OPT_AUTO_DEDUP, NULL, 0, "enable auto deduplication of memory images", 0 },
  { "lazy-pages", OPT_LAZY_PAGES, NULL, 0, "use userfaultfd to lazily restore memory pages", 0 },
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

  switch (key)
    {
    case OPT_CONSOLE_SOCKET:
      o->console_socket = arg;
      break;
    case OPT_IMAGE_PATH:
      o->image_path = arg;
      break;
    case OPT_WORK_PATH:
      o->work_path = arg;
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
    case OPT_FILE_LOCKS:
      o->file_locks = true;
      break;
    case OPT_MANAGE_CGROUPS_MODE:
      o->manage_cgroups_mode = arg;
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
      o->no_subreaper = true;
      break;
    case OPT_NO_PIVOT:
      o->no_pivot = true;
      break;
    case OPT_EMPTY_NS:
      o->empty_ns = xrealloc (o->empty_ns, (o->n_empty_ns + 1) * sizeof (char *));
      o->empty_ns[o->n_empty_ns++] = arg;
      break;
    case OPT_AUTO_DEDUP:
      o->auto_dedup = true;
      break;
    case OPT_LAZY_PAGES:
      o->lazy_pages = true;
      break;
    case OPT_LSM_PROFILE:
      o->lsm_profile = arg;
      break;
    case OPT_LSM_MOUNT_CONTEXT:
      o->lsm_mount_context = arg;
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

int
cli_cmd_restore (struct cli_global *g, int argc, char **argv)
{
  struct restore_opts o;
  struct ocirun_context ctx;
  struct ocirun_criu_request req;
  cleanup_free char *bundle = NULL;
  cleanup_error ocirun_error_t err = NULL;
  int ret, status = 0;

  memset (&o, 0, sizeof o);
  o.first_arg = -1;
  if (argp_parse (&restore_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  ret = cli_check_args (g, "restore", o.first_arg < 0 ? 0 : argc - o.first_arg, 1, 1);
  if (ret == 0)
    {
      memset (&req, 0, sizeof req);
      req.image_path = o.image_path;
      req.work_path = o.work_path;
      req.manage_cgroups_mode = o.manage_cgroups_mode;
      req.lsm_profile = o.lsm_profile;
      req.lsm_mount_context = o.lsm_mount_context;
      req.empty_ns = o.empty_ns;
      req.n_empty_ns = o.n_empty_ns;
      req.status_fd = -1;
      req.tcp_established = o.tcp_established;
      req.ext_unix_sk = o.ext_unix_sk;
      req.shell_job = o.shell_job;
      req.file_locks = o.file_locks;
      req.auto_dedup = o.auto_dedup;
      req.lazy_pages = o.lazy_pages;
      req.no_subreaper = o.no_subreaper;
      if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0)
        ret = cli_fail (g, &err);
      else if (o.bundle && (bundle = realpath (o.bundle, NULL)) == NULL)
        {
          ocirun_make_error (&err, errno, "bundle `%s`", o.bundle);
          ret = cli_fail (g, &err);
        }
      else
        {
          ctx.bundle = bundle;
          ctx.console_socket = o.console_socket;
          ctx.pid_file = o.pid_file;
          ctx.no_pivot = o.no_pivot;
          ctx.detach = o.detach;
          if (ocirun_container_restore (&ctx, &req, &status, &err) < 0)
            ret = cli_fail (g, &err);
          else
            /* As run: the container's exit status is ours (0 when detached). */
            ret = o.detach ? 0 : status;
        }
    }
  free (o.empty_ns);
  return ret;
}
