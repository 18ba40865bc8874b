/* The container lifecycle as a readable sequence: create, start, run, kill,
 * delete, state, list, ps. Each step that can fail undoes what the earlier
 * steps made, so a failed create leaves no state dir, cgroup or process. */
#include "config.h"
#include "container.h"
#include "bootstrap.h"
#include "cgroup/cgroup.h"
#include "namespaces.h"
#include "intelrdt.h"
#include "netdev.h"
#include "ocirun.h"
#include "passwd.h"
#include "pidref.h"
#include "state.h"
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define STATE_CONFIG "config.json"
#define EXEC_FIFO "exec.fifo"
/* Exists only with poststart hooks: the init holds it open until execve. */
#define EXEC_DONE "exec.done"

char *
ocirun_hook_state_json (const struct ocirun_container *c, const char *status, pid_t pid)
{
  oci_state st = { 0 };

  st.oci_version = (char *)OCI_SPEC_VERSION;
  st.id = (char *)c->id;
  st.status = (char *)status;
  st.pid = pid;
  st.has_pid = pid > 0;
  st.bundle = (char *)c->bundle;
  st.annotations = c->config->annotations;
  return oci_state_to_json (&st, 0, NULL);
}

/* Parses config.json and reports the first problem with its JSON path (all
 * of them are listed by `ocirun check`). */
int
ocirun_parse_config (const char *path, const char *data, size_t len, oci_config **out, ocirun_error_t *err)
{
  ocispec_errors errs = { 0 };
  oci_config *cfg = data ? oci_config_parse_data (data, len, &errs) : oci_config_parse_file (path, &errs);
  const char *name = strrchr (path, '/') ? strrchr (path, '/') + 1 : path;

  if (cfg == NULL)
    {
      int ret;
      if (errs.len > 1)
        ret = ocirun_make_error (err, -EINVAL, "%s: %s (and %zu more problems: run `ocirun check`)", name, errs.msgs[0],
                                 errs.len - 1);
      else
        ret = ocirun_make_error (err, -EINVAL, "%s: %s", name, errs.len ? errs.msgs[0] : "cannot be parsed");
      ocispec_errors_free (&errs);
      return ret;
    }
  *out = cfg;
  return 0;
}

static void
config_freep (oci_config **c)
{
  if (*c)
    oci_config_free (*c);
}
#define cleanup_config __attribute__ ((cleanup (config_freep)))

static void
status_freep (oci_container_status **s)
{
  if (*s)
    oci_container_status_free (*s);
}
#define cleanup_status __attribute__ ((cleanup (status_freep)))

/* ------------------------------------------------------------------------ */
/* create */

struct created
{
  pid_t pid;
  int pty_master; /* foreground terminal for `run`, or -1 */
};

int
ocirun_write_pid_file (const char *path, pid_t pid, ocirun_error_t *err)
{
  cleanup_free char *dir = NULL, *base = NULL, *buf = NULL;
  cleanup_close int dfd = -1;
  char *slash;
  int n;

  dir = xstrdup (path);
  slash = strrchr (dir, '/');
  if (slash == NULL)
    {
      free (dir);
      dir = xstrdup (".");
      base = xstrdup (path);
    }
  else
    {
      base = xstrdup (slash + 1);
      if (slash == dir)
        slash[1] = '\0';
      else
        *slash = '\0';
    }
  dfd = open (dir, O_DIRECTORY | O_PATH | O_CLOEXEC);
  if (dfd < 0)
    return ocirun_make_error (err, errno, "pid file: open directory `%s`", dir);
  /* No newline: runc writes just the number, and some callers parse it as is. */
  n = xasprintf (&buf, "%d", pid);
  if (ocirun_write_file_atomic_at (dfd, base, buf, n, 0644, err) < 0)
    return ocirun_error_prefix (err, "pid file `%s`", path);
  return 0;
}

int
ocirun_resolve_rootfs (const char *bundle, const oci_config *cfg, char **out, ocirun_error_t *err)
{
  cleanup_free char *joined = NULL;
  struct stat sb;
  char *real;

  if (cfg->root == NULL || cfg->root->path == NULL)
    return ocirun_make_error (err, -EINVAL, "config.json: root.path: required field is missing");
  if (cfg->root->path[0] == '/')
    joined = xstrdup (cfg->root->path);
  else
    xasprintf (&joined, "%s/%s", bundle, cfg->root->path);
  real = realpath (joined, NULL);
  if (real == NULL)
    return ocirun_make_error (err, errno, "rootfs `%s`", joined);
  if (stat (real, &sb) < 0 || !S_ISDIR (sb.st_mode))
    {
      free (real);
      return ocirun_make_error (err, ENOTDIR, "rootfs `%s`", joined);
    }
  *out = real;
  return 0;
}

static int
remove_state_dir (const char *root, const char *id)
{
  cleanup_error ocirun_error_t e = NULL;
  return ocirun_state_remove (root, id, &e);
}

static oci_map_string *
copy_annotations (const oci_map_string *src)
{
  oci_map_string *m;

  if (src == NULL || src->len == 0)
    return NULL;
  m = xmalloc0 (sizeof *m);
  m->keys = xmalloc0 ((src->len + 1) * sizeof (char *));
  m->values = xmalloc0 ((src->len + 1) * sizeof (char *));
  for (size_t i = 0; i < src->len; i++)
    {
      m->keys[i] = xstrdup (src->keys[i]);
      m->values[i] = xstrdup (src->values[i]);
    }
  m->len = src->len;
  return m;
}

int
ocirun_read_bundle (struct ocirun_context *ctx, char **bundle, char **text, size_t *len, oci_config **cfg,
                    ocirun_error_t *err)
{
  cleanup_free char *config_path = NULL;
  int ret;

  *bundle = realpath (ctx->bundle ? ctx->bundle : ".", NULL);
  if (*bundle == NULL)
    return ocirun_make_error (err, errno, "bundle `%s`", ctx->bundle ? ctx->bundle : ".");
  xasprintf (&config_path, "%s/%s", *bundle, ctx->config_file ? ctx->config_file : STATE_CONFIG);
  ret = ocirun_read_file (config_path, text, len, err);
  if (ret < 0)
    return ret;
  return ocirun_parse_config (config_path, *text, *len, cfg, err);
}

int
ocirun_container_cgroup_create (struct ocirun_context *ctx, const oci_config *cfg, struct ocirun_cgroup **cg,
                                ocirun_error_t *err)
{
  const oci_linux *lx = cfg->linux;
  struct ocirun_cgroup_request req = { .id = ctx->id,
                                       .cgroups_path = lx ? lx->cgroups_path : NULL,
                                       .resources = lx ? lx->resources : NULL,
                                       .systemd = ctx->systemd_cgroup,
                                       .rootless = ctx->rootless,
                                       .linux_devices = lx ? lx->devices : NULL,
                                       .linux_devices_len = lx ? lx->devices_len : 0,
                                       .log = ctx->log };
  return ocirun_cgroup_create (&req, cg, err);
}

oci_container_status *
ocirun_new_status (struct ocirun_context *ctx, pid_t pid, const char *bundle, const char *rootfs, const oci_config *cfg,
                   struct ocirun_cgroup *cg, bool detached)
{
  oci_container_status *st = xmalloc0 (sizeof *st);

  st->id = xstrdup (ctx->id);
  st->pid = pid;
  st->has_pid = true;
  st->pid_start_time = ocirun_pid_start_time (pid);
  st->has_pid_start_time = true;
  st->bundle = xstrdup (bundle);
  st->rootfs = xstrdup (rootfs);
  st->created = ocirun_now_rfc3339 ();
  st->owner = xstrdup ("");
  st->config_path = xstrdup (STATE_CONFIG);
  if (cg)
    {
      st->cgroup_path = xstrdup (ocirun_cgroup_path (cg));
      st->cgroup_manager = xstrdup (ocirun_cgroup_manager (cg));
      st->freezer_dir = xstrdup (ocirun_cgroup_freezer_dir (cg));
    }
  /* state and list show the annotations without parsing the config. */
  st->annotations = copy_annotations (cfg->annotations);
  st->detached = detached;
  st->has_detached = true;
  return st;
}

static int
create_container (struct ocirun_context *ctx, bool foreground, struct created *out, struct ocirun_loaded *keep,
                  ocirun_error_t *err)
{
  cleanup_free char *bundle = NULL, *config_text = NULL, *rootfs = NULL;
  cleanup_free char *state_dir = NULL;
  cleanup_config oci_config *cfg = NULL;
  cleanup_status oci_container_status *st = NULL;
  cleanup_cgroup struct ocirun_cgroup *cg = NULL;
  cleanup_close int dirfd = -1, fifo_fd = -1, done_fd = -1, master = -1;
  struct ocirun_ns_plan plan = { 0 };
  struct ocirun_container c = { 0 };
  struct ocirun_spawn sp = { 0 };
  size_t config_len = 0;
  bool reserved = false;
  int ret;

  out->pid = -1;
  out->pty_master = -1;

  ret = ocirun_validate_id (ctx->id, err);
  if (ret < 0)
    return ret;

  ret = ocirun_read_bundle (ctx, &bundle, &config_text, &config_len, &cfg, err);
  if (ret < 0)
    return ret;
  if (cfg->process == NULL)
    return ocirun_make_error (err, -EINVAL, "config.json: process: required to create a container");
  if (cfg->process->args_len == 0)
    return ocirun_make_error (err, -EINVAL, "config.json: process.args: must not be empty");
  ret = ocirun_resolve_rootfs (bundle, cfg, &rootfs, err);
  if (ret < 0)
    return ret;

  if (cfg->process->terminal && ctx->console_socket == NULL && !foreground)
    return ocirun_make_error (err, EINVAL,
                              "cannot allocate a terminal without --console-socket when the container is detached");
  if (!cfg->process->terminal && ctx->console_socket)
    return ocirun_make_error (err, EINVAL, "--console-socket given but process.terminal is false: no terminal to send");

  ret = ocirun_ns_plan_build (cfg->linux, &plan, err);
  if (ret < 0)
    return ret;
  ret = ocirun_netdev_validate (cfg->linux, (plan.new_flags | plan.join_flags) & CLONE_NEWNET, err);
  if (ret < 0)
    {
      ocirun_ns_plan_close (&plan);
      return ret;
    }

  c.id = ctx->id;
  c.config = cfg;
  c.bundle = bundle;
  c.rootfs = rootfs;
  c.log = ctx->log;
  c.no_pivot = ctx->no_pivot;
  c.no_new_keyring = ctx->no_new_keyring;
  c.rootless = ctx->rootless;
  c.userns = (plan.new_flags | plan.join_flags) & CLONE_NEWUSER;
  c.preserve_fds = ctx->preserve_fds + ctx->listen_fds;
  if (ctx->listen_fds > 0)
    {
      /* The activated fds come first, as sd_listen_fds expects, and the
       * container's init is pid 1 of whatever reads them. */
      oci_process *p = cfg->process;
      p->env = xrealloc (p->env, (p->env_len + 3) * sizeof (char *));
      xasprintf (&p->env[p->env_len++], "LISTEN_FDS=%d", ctx->listen_fds);
      p->env[p->env_len++] = xstrdup ("LISTEN_PID=1");
      p->env[p->env_len] = NULL;
      p->has_env = true;
    }
  c.rootfs_fd = -1;

  dirfd = ocirun_state_reserve (ctx->root, ctx->id, err);
  if (dirfd < 0)
    {
      ret = dirfd;
      goto out;
    }
  reserved = true;
  xasprintf (&state_dir, "%s/%s", ctx->root, ctx->id);
  c.state_dir = state_dir;

  /* A copy of the config as created: start, delete and exec must not see
   * later edits of the bundle. */
  ret = ocirun_write_file_atomic_at (dirfd, STATE_CONFIG, config_text, config_len, 0600, err);
  if (ret < 0)
    goto out;

  if (mkfifoat (dirfd, EXEC_FIFO, 0600) < 0)
    {
      ret = ocirun_make_error (err, errno, "mkfifo `%s/%s`", state_dir, EXEC_FIFO);
      goto out;
    }
  fifo_fd = openat (dirfd, EXEC_FIFO, O_RDWR | O_CLOEXEC);
  if (fifo_fd < 0)
    {
      ret = ocirun_make_error (err, errno, "open `%s/%s`", state_dir, EXEC_FIFO);
      goto out;
    }
  if (cfg->hooks && cfg->hooks->poststart_len)
    {
      if (mkfifoat (dirfd, EXEC_DONE, 0600) < 0)
        {
          ret = ocirun_make_error (err, errno, "mkfifo `%s/%s`", state_dir, EXEC_DONE);
          goto out;
        }
      done_fd = openat (dirfd, EXEC_DONE, O_RDWR | O_CLOEXEC);
      if (done_fd < 0)
        {
          ret = ocirun_make_error (err, errno, "open `%s/%s`", state_dir, EXEC_DONE);
          goto out;
        }
    }

  ret = ocirun_container_cgroup_create (ctx, cfg, &cg, err);
  if (ret < 0)
    goto out;

  sp.c = &c;
  sp.plan = &plan;
  sp.cg = cg;
  sp.fifo_fd = fifo_fd;
  sp.done_fd = done_fd;
  sp.console_slave_fd = -1;
  sp.want_console = cfg->process->terminal;
  sp.console_master = -1;
  sp.state_dirfd = dirfd;
  ret = ocirun_spawn_init (&sp, err);
  if (ret < 0)
    goto out;
  out->pid = sp.pid;
  master = sp.console_master;
  if (master >= 0 && ctx->console_socket)
    {
      ret = ocirun_send_console (ctx->console_socket, master, err);
      if (ret < 0)
        goto out;
    }

  st = ocirun_new_status (ctx, sp.pid, bundle, rootfs, cfg, cg, ctx->detach || !foreground);
  st->intel_rdt_group = steal_pointer (&sp.intelrdt_group);
  ret = ocirun_state_write (dirfd, st, err);
  if (ret < 0)
    goto out;

  if (ctx->pid_file)
    {
      ret = ocirun_write_pid_file (ctx->pid_file, sp.pid, err);
      if (ret < 0)
        goto out;
    }

  if (foreground && master >= 0 && ctx->console_socket == NULL)
    out->pty_master = steal_fd (&master);
  if (keep)
    {
      /* `run` goes on to start it: hand over what is loaded (and the lock). */
      keep->dirfd = steal_fd (&dirfd);
      keep->st = steal_pointer (&st);
      keep->config = steal_pointer (&cfg);
      keep->cg = steal_pointer (&cg);
      keep->status = OCIRUN_STATUS_CREATED;
    }
  ret = 0;

out:
  ocirun_ns_plan_close (&plan);
  if (ret < 0)
    {
      if (out->pid > 0)
        {
          int status;
          kill (out->pid, SIGKILL);
          TEMP_FAILURE_RETRY_INT (waitpid (out->pid, &status, 0));
          out->pid = -1;
        }
      if (cg)
        {
          cleanup_error ocirun_error_t e = NULL;
          ocirun_cgroup_destroy (cg, &e);
        }
      if (reserved)
        remove_state_dir (ctx->root, ctx->id);
      return ocirun_error_prefix (err, "create container `%s`", ctx->id);
    }
  return 0;
}

int
ocirun_container_create (struct ocirun_context *ctx, ocirun_error_t *err)
{
  struct created cr;
  return create_container (ctx, false, &cr, NULL, err);
}

/* ------------------------------------------------------------------------ */
/* Loading an existing container */

void
ocirun_loaded_free (struct ocirun_loaded *l)
{
  if (l->dirfd >= 0)
    close (l->dirfd);
  if (l->st)
    oci_container_status_free (l->st);
  if (l->config)
    oci_config_free (l->config);
  if (l->cg)
    ocirun_cgroup_free (l->cg);
  memset (l, 0, sizeof *l);
  l->dirfd = -1;
}

/* want_cgroup: load the container's cgroup (commands that act on it);
 * without it, paused is read from the freezer directory stored at create. */
static int
load_state_at (struct ocirun_context *ctx, int rootfd, bool exclusive, bool want_config, bool want_cgroup,
               struct ocirun_loaded *l, ocirun_error_t *err)
{
  cleanup_close int own_rootfd = -1;
  bool frozen = false;
  struct stat sb;
  int ret;

  l->dirfd = -1;
  ret = ocirun_validate_id (ctx->id, err);
  if (ret < 0)
    return ret;
  if (rootfd < 0)
    {
      rootfd = own_rootfd = open (ctx->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (rootfd < 0)
        {
          if (errno == ENOENT)
            return ocirun_make_error (err, -ENOENT, "container `%s` does not exist", ctx->id);
          return ocirun_make_error (err, errno, "open state root `%s`", ctx->root);
        }
    }
  l->dirfd = ocirun_state_open_at (rootfd, ctx->id, exclusive, &sb, err);
  if (l->dirfd < 0)
    return l->dirfd;
  l->owner = sb.st_uid;
  ret = ocirun_state_read (l->dirfd, &l->st, err);
  if (ret < 0)
    return ret;

  if (want_cgroup && l->st->cgroup_path && l->st->cgroup_path[0])
    {
      cleanup_error ocirun_error_t e = NULL;
      /* A cgroup that vanished (host reboot of the hierarchy, manual
       * cleanup) must not make the container unmanageable. */
      if (ocirun_cgroup_load (l->st->cgroup_path, l->st->cgroup_manager, ctx->log, &l->cg, &e) < 0)
        ocirun_debug (ctx->log, "container %s: cgroup %s: %s", ctx->id, l->st->cgroup_path, e->msg);
    }
  l->status = ocirun_state_status (l->dirfd, l->st, false);
  /* runc pauses created containers too. */
  if (l->status == OCIRUN_STATUS_RUNNING || l->status == OCIRUN_STATUS_CREATED)
    {
      cleanup_error ocirun_error_t e = NULL;
      int r = 1;
      if (l->cg)
        r = ocirun_cgroup_is_frozen (l->cg, &frozen, &e);
      else if (l->st->freezer_dir)
        r = ocirun_cgroup_dir_is_frozen (l->st->freezer_dir, &frozen, &e);
      if (r == 0 && frozen)
        l->status = OCIRUN_STATUS_PAUSED;
    }

  if (want_config)
    {
      cleanup_free char *text = NULL;
      size_t len;
      ret = ocirun_read_file_at (l->dirfd, STATE_CONFIG, &text, &len, err);
      if (ret < 0)
        return ret;
      ret = ocirun_parse_config (STATE_CONFIG, text, len, &l->config, err);
      if (ret < 0)
        return ret;
    }
  return 0;
}

static int
load_state (struct ocirun_context *ctx, bool exclusive, bool want_config, bool want_cgroup, struct ocirun_loaded *l,
            ocirun_error_t *err)
{
  return load_state_at (ctx, -1, exclusive, want_config, want_cgroup, l, err);
}

int
ocirun_load_container (struct ocirun_context *ctx, bool exclusive, bool want_config, struct ocirun_loaded *l,
                       ocirun_error_t *err)
{
  return load_state (ctx, exclusive, want_config, true, l, err);
}

static void
container_from_loaded (struct ocirun_context *ctx, struct ocirun_loaded *l, struct ocirun_container *c)
{
  memset (c, 0, sizeof *c);
  c->id = ctx->id;
  c->config = l->config;
  c->bundle = l->st->bundle;
  c->rootfs = l->st->rootfs;
  c->log = ctx->log;
  c->rootfs_fd = -1;
}

/* ------------------------------------------------------------------------ */
/* start */

static int
release_init (struct ocirun_context *ctx, struct ocirun_loaded *l, ocirun_error_t *err)
{
  cleanup_close int fd = -1, done = -1;
  struct ocirun_container c;
  bool poststart = l->config->hooks && l->config->hooks->poststart_len;

  /* poststart hooks run once the process is executed (runtime-spec): the
   * init's close-on-exec writer of exec.done goes away exactly then. */
  if (poststart)
    done = openat (l->dirfd, EXEC_DONE, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

  fd = openat (l->dirfd, EXEC_FIFO, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENXIO)
        return ocirun_make_error (err, -ESRCH, "the container init is not running");
      return ocirun_make_error (err, errno, "open exec.fifo");
    }
  if (TEMP_FAILURE_RETRY_INT (write (fd, "0", 1)) != 1)
    return ocirun_make_error (err, errno, "write exec.fifo");
  if (unlinkat (l->dirfd, EXEC_FIFO, 0) < 0)
    return ocirun_make_error (err, errno, "remove exec.fifo");
  if (done >= 0)
    {
      struct pollfd p = { .fd = done, .events = POLLIN };
      /* POLLHUP when the last writer (the init) is gone: execve, or death. */
      while (TEMP_FAILURE_RETRY_INT (poll (&p, 1, -1)) >= 0 && !(p.revents & (POLLHUP | POLLERR)))
        ;
      unlinkat (l->dirfd, EXEC_DONE, 0);
    }

  container_from_loaded (ctx, l, &c);
  if (l->config->hooks && l->config->hooks->poststart_len)
    {
      cleanup_error ocirun_error_t e = NULL;
      cleanup_free char *state = ocirun_hook_state_json (&c, "running", l->st->pid);
      /* The spec: a failing poststart hook is logged; the container runs on. */
      if (ocirun_run_hooks (l->config->hooks->poststart, l->config->hooks->poststart_len, "poststart", state, ctx->log,
                            &e)
          < 0)
        ocirun_warning (ctx->log, "%s", e->msg);
    }
  return 0;
}

int
ocirun_container_start (struct ocirun_context *ctx, ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  int ret = load_state (ctx, true, true, false, &l, err);

  if (ret < 0)
    return ret;
  switch (l.status)
    {
    case OCIRUN_STATUS_CREATED:
      return release_init (ctx, &l, err);
    case OCIRUN_STATUS_STOPPED:
      return ocirun_make_error (err, -EINVAL, "cannot start a container that has stopped");
    case OCIRUN_STATUS_PAUSED:
      return ocirun_make_error (err, -EINVAL, "cannot start a container in the paused state");
    default:
      return ocirun_make_error (err, -EINVAL, "cannot start an already running container");
    }
}

/* ------------------------------------------------------------------------ */
/* kill / delete */

/* Signals the init through a pidfd after checking its start time, so that a
 * recycled pid never receives the signal (pidref.h for older kernels). */
static int
signal_init (struct ocirun_loaded *l, int signo, ocirun_error_t *err)
{
  cleanup_pidref struct ocirun_pidref init = { .fd = -1 };
  int ret = ocirun_pidref_open (&init, l->st->pid, l->st->pid_start_time);

  if (ret == 0)
    ret = ocirun_pidref_signal (&init, signo);
  if (ret == -ESRCH)
    return ocirun_make_error (err, -ESRCH, "container not running");
  if (ret < 0)
    return ocirun_make_error (err, -ret, "send signal %d to %d", signo, l->st->pid);
  return 0;
}

int
ocirun_container_kill (struct ocirun_context *ctx, int signo, bool all, ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  int ret = ocirun_load_container (ctx, false, false, &l, err);

  if (ret < 0)
    return ret;
  if (all && l.cg)
    return ocirun_cgroup_kill (l.cg, signo, err);
  if (l.status == OCIRUN_STATUS_STOPPED)
    return ocirun_make_error (err, -ESRCH, "container not running");
  return signal_init (&l, signo, err);
}

/* Waits (up to ~10 s) for the init to be gone after SIGKILL. We are usually
 * not its parent, so watch it rather than waitpid. */
void
ocirun_wait_gone (pid_t pid, uint64_t start_time)
{
  cleanup_pidref struct ocirun_pidref init = { .fd = -1 };

  if (ocirun_pidref_open (&init, pid, start_time) < 0)
    return;
  ocirun_pidref_wait_exit (&init, 10000);
  /* Reap it when it is our child (run's own cleanup). */
  waitpid (pid, NULL, WNOHANG);
}

const char *
ocirun_config_netns_path (const oci_config *cfg)
{
  if (cfg == NULL || cfg->linux == NULL)
    return NULL;
  for (size_t i = 0; i < cfg->linux->namespaces_len; i++)
    if (strcmp (cfg->linux->namespaces[i]->type, "network") == 0)
      return cfg->linux->namespaces[i]->path;
  return NULL;
}

int
ocirun_destroy_container (struct ocirun_context *ctx, struct ocirun_loaded *l, ocirun_error_t *err)
{
  struct ocirun_container c;

  if (l->st->intel_rdt_group)
    {
      cleanup_error ocirun_error_t e = NULL;
      if (ocirun_intelrdt_remove (l->st->intel_rdt_group, &e) < 0)
        ocirun_warning (ctx->log, "%s", e->msg);
    }
  if (l->config && l->config->linux && l->config->linux->net_devices)
    {
      cleanup_error ocirun_error_t e = NULL;
      if (ocirun_netdev_move_back (l->config->linux, ocirun_config_netns_path (l->config), &e) < 0)
        ocirun_warning (ctx->log, "%s", e->msg);
    }

  if (l->cg)
    {
      int ret = ocirun_cgroup_destroy (l->cg, err);
      if (ret < 0)
        return ret;
    }
  if (l->config && l->config->hooks && l->config->hooks->poststop_len)
    {
      cleanup_error ocirun_error_t e = NULL;
      cleanup_free char *state = NULL;
      container_from_loaded (ctx, l, &c);
      state = ocirun_hook_state_json (&c, "stopped", 0);
      /* The spec: poststop failures are logged, deletion goes on. */
      if (ocirun_run_hooks (l->config->hooks->poststop, l->config->hooks->poststop_len, "poststop", state, ctx->log, &e)
          < 0)
        ocirun_warning (ctx->log, "%s", e->msg);
    }
  return ocirun_state_remove (ctx->root, ctx->id, err);
}

int
ocirun_container_delete (struct ocirun_context *ctx, bool force, ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  int ret = ocirun_load_container (ctx, true, true, &l, err);

  if (ret < 0)
    {
      /* --force on a missing container is not an error (runc agrees); a
       * half-made state dir (no status yet) is removed by --force. */
      if (force && *err && (*err)->status == ENOENT)
        {
          ocirun_error_free (err);
          if (l.dirfd >= 0 && l.st == NULL)
            return ocirun_state_remove (ctx->root, ctx->id, err);
          return 0;
        }
      return ret;
    }

  switch (l.status)
    {
    case OCIRUN_STATUS_STOPPED:
      break;
    case OCIRUN_STATUS_CREATED:
      /* A created container never ran user code: runc deletes it too. */
      signal_init (&l, SIGKILL, err);
      ocirun_error_free (err);
      if (l.cg)
        {
          ocirun_cgroup_kill (l.cg, SIGKILL, err);
          ocirun_error_free (err);
        }
      ocirun_wait_gone (l.st->pid, l.st->pid_start_time);
      break;
    default:
      if (!force)
        return ocirun_make_error (err, -EBUSY, "cannot delete container `%s` that is not stopped: %s", ctx->id,
                                  ocirun_status_name (l.status));
      if (l.cg)
        {
          if (l.status == OCIRUN_STATUS_PAUSED)
            {
              ocirun_cgroup_freeze (l.cg, false, err);
              ocirun_error_free (err);
            }
          ocirun_cgroup_kill (l.cg, SIGKILL, err);
          ocirun_error_free (err);
        }
      signal_init (&l, SIGKILL, err);
      ocirun_error_free (err);
      ocirun_wait_gone (l.st->pid, l.st->pid_start_time);
      break;
    }
  return ocirun_destroy_container (ctx, &l, err);
}

/* ------------------------------------------------------------------------ */
/* run: create + start + wait */

void
ocirun_relay_begin (struct ocirun_relay *r)
{
  sigset_t all;

  /* Everything that can be blocked: runc forwards every signal too. */
  sigfillset (&all);
  sigdelset (&all, SIGKILL);
  sigdelset (&all, SIGSTOP);
  r->blocked = sigprocmask (SIG_BLOCK, &all, &r->old) == 0;
}

void
ocirun_relay_end (struct ocirun_relay *r)
{
  if (r->blocked)
    sigprocmask (SIG_SETMASK, &r->old, NULL);
  r->blocked = false;
}

int
ocirun_wait_process (pid_t pid, int pty_master, struct ocirun_relay *relay, int *exit_status, ocirun_error_t *err)
{
  /* pid is our child: it cannot be recycled before we reap it, so plain
   * kill() is safe where the kernel has no pidfd (before 5.3), and SIGCHLD
   * tells when to look. */
  cleanup_close int pidfd = (int)syscall (SYS_pidfd_open, pid, 0), sfd = -1;
  cleanup_relay struct ocirun_relay own = { .blocked = false };
  bool reaped = false;
  int status = 0;

  if (relay == NULL)
    relay = &own;
  if (pidfd < 0 && errno != ENOSYS)
    return ocirun_make_error (err, errno, "pidfd_open %d", pid);

  if (pty_master >= 0)
    {
      int ret = ocirun_pty_relay (pty_master, pid, pidfd, relay->blocked, err);
      ocirun_relay_end (relay);
      if (ret < 0)
        return ret;
    }
  else
    {
      sigset_t all;

      /* Every signal that reaches us goes to the container's process, as
       * runc does; SIGCHLD only tells us to look at it. */
      if (!relay->blocked)
        ocirun_relay_begin (relay);
      sigfillset (&all);
      sfd = signalfd (-1, &all, SFD_CLOEXEC);
      if (sfd < 0)
        return ocirun_make_error (err, errno, "signalfd");
      /* A SIGCHLD from before the mask was set is lost: look once. */
      if (pidfd < 0 && waitpid (pid, &status, WNOHANG) == pid)
        reaped = true;
      while (!reaped)
        {
          struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
          if (poll (p, pidfd >= 0 ? 2 : 1, -1) < 0)
            {
              if (errno == EINTR)
                continue;
              break;
            }
          if (pidfd >= 0 && p[1].revents)
            break;
          if (p[0].revents)
            {
              struct signalfd_siginfo si;
              if (read (sfd, &si, sizeof si) != sizeof si)
                continue;
              if (si.ssi_signo != SIGCHLD)
                {
                  if (pidfd >= 0)
                    syscall (SYS_pidfd_send_signal, pidfd, si.ssi_signo, NULL, 0);
                  else
                    kill (pid, (int)si.ssi_signo);
                }
              else if (pidfd < 0 && waitpid (pid, &status, WNOHANG) == pid)
                reaped = true;
            }
        }
      /* What came after the process ended has no one to go to: drop it
       * rather than let it kill the runtime before it cleans up. */
      for (;;)
        {
          struct pollfd p = { .fd = sfd, .events = POLLIN };
          struct signalfd_siginfo si;
          if (poll (&p, 1, 0) <= 0 || read (sfd, &si, sizeof si) != sizeof si)
            break;
        }
      ocirun_relay_end (relay);
    }

  if (!reaped && TEMP_FAILURE_RETRY_INT (waitpid (pid, &status, 0)) < 0)
    return ocirun_make_error (err, errno, "wait for the container init");
  if (WIFEXITED (status))
    *exit_status = WEXITSTATUS (status);
  else if (WIFSIGNALED (status))
    *exit_status = 128 + WTERMSIG (status);
  else
    *exit_status = 255;
  return 0;
}

int
ocirun_container_run (struct ocirun_context *ctx, int *exit_status, ocirun_error_t *err)
{
  struct created cr;
  cleanup_close int master = -1;
  cleanup_relay struct ocirun_relay relay = { .blocked = false };
  int ret;

  *exit_status = 0;
  /* Signals that arrive while the container is made wait for it. */
  if (!ctx->detach)
    ocirun_relay_begin (&relay);
  {
    cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
    ret = create_container (ctx, !ctx->detach, &cr, &l, err);
    if (ret < 0)
      return ret;
    master = cr.pty_master;
    ret = release_init (ctx, &l, err);
    if (ret < 0)
      {
        cleanup_error ocirun_error_t e = NULL;
        ocirun_container_delete (ctx, true, &e);
        return ret;
      }
  }
  if (ctx->detach)
    return 0;

  ret = ocirun_wait_process (cr.pid, master, &relay, exit_status, err);
  if (ret < 0)
    return ret;
  if (!ctx->keep)
    return ocirun_container_delete (ctx, true, err);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* state / list / ps */

static oci_runc_state *
runc_state_from (struct ocirun_loaded *l)
{
  oci_runc_state *s = xmalloc0 (sizeof *s);

  s->oci_version = xstrdup (OCI_SPEC_VERSION);
  s->id = xstrdup (l->st->id);
  s->pid = l->status == OCIRUN_STATUS_STOPPED ? 0 : l->st->pid;
  s->has_pid = true;
  s->status = xstrdup (ocirun_status_name (l->status));
  s->bundle = xstrdup (l->st->bundle);
  s->rootfs = xstrdup (l->st->rootfs);
  s->created = xstrdup (l->st->created);
  s->owner = xstrdup (l->st->owner ? l->st->owner : "");
  s->annotations
      = copy_annotations (l->st->annotations ? l->st->annotations : (l->config ? l->config->annotations : NULL));
  return s;
}

int
ocirun_container_state (struct ocirun_context *ctx, oci_runc_state **out, ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  int ret = load_state (ctx, false, false, false, &l, err);

  if (ret < 0)
    return ret;
  *out = runc_state_from (&l);
  return 0;
}

static int
cmp_state (const void *a, const void *b)
{
  return strcmp ((*(oci_runc_state *const *)a)->id, (*(oci_runc_state *const *)b)->id);
}

int
ocirun_container_list (struct ocirun_context *ctx, struct ocirun_list *out, ocirun_error_t *err)
{
  cleanup_dir DIR *d = opendir (ctx->root);
  cleanup_free char *owner_name = NULL;
  uid_t owner_uid = (uid_t)-1;
  struct dirent *de;
  size_t cap = 0;

  memset (out, 0, sizeof *out);
  if (d == NULL)
    {
      /* No root yet means no containers, as with runc. */
      if (errno == ENOENT)
        return 0;
      return ocirun_make_error (err, errno, "open state root `%s`", ctx->root);
    }
  while ((de = readdir (d)))
    {
      struct ocirun_context sub = *ctx;
      cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
      cleanup_error ocirun_error_t e = NULL;

      if (de->d_name[0] == '.')
        continue;
      sub.id = de->d_name;
      if (load_state_at (&sub, dirfd (d), false, false, false, &l, &e) < 0)
        continue; /* being created or deleted right now */
      if (out->len == cap)
        {
          cap = cap ? cap * 2 : 16;
          out->items = xrealloc (out->items, cap * sizeof *out->items);
        }
      out->items[out->len] = runc_state_from (&l);
      /* runc shows who owns the state directory, by name from /etc/passwd
       * (not NSS); one owner for all of them is the rule. */
      if (owner_name == NULL || l.owner != owner_uid)
        {
          free (owner_name);
          owner_uid = l.owner;
          owner_name = ocirun_passwd_lookup ("/etc/passwd", owner_uid, OCIRUN_PASSWD_NAME);
          if (owner_name == NULL)
            xasprintf (&owner_name, "#%u", (unsigned)owner_uid);
        }
      free (out->items[out->len]->owner);
      out->items[out->len]->owner = xstrdup (owner_name);
      out->len++;
    }
  if (out->len)
    qsort (out->items, out->len, sizeof *out->items, cmp_state);
  return 0;
}

void
ocirun_list_free (struct ocirun_list *l)
{
  for (size_t i = 0; i < l->len; i++)
    oci_runc_state_free (l->items[i]);
  free (l->items);
  l->items = NULL;
  l->len = 0;
}

int
ocirun_container_pids (struct ocirun_context *ctx, pid_t **pids, size_t *len, ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  int ret = ocirun_load_container (ctx, false, false, &l, err);

  if (ret < 0)
    return ret;
  if (l.cg)
    return ocirun_cgroup_pids (l.cg, pids, len, err);
  /* Without a cgroup (rootless, no delegation) the init is all we know. */
  *len = 0;
  *pids = NULL;
  if (l.status != OCIRUN_STATUS_STOPPED)
    {
      *pids = xmalloc0 (sizeof (pid_t));
      (*pids)[0] = l.st->pid;
      *len = 1;
    }
  return 0;
}
