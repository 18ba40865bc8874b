/* checkpoint and restore through the criu binary (criu(8)).
 *
 * ocirun runs `criu dump` and `criu restore` with the options runc gives
 * criu over its RPC channel, so that the images are the same: bind mounts
 * are external mounts keyed by their destination, a network namespace
 * joined by path is the external `extRootNetNS`, and descriptors.json
 * records the init's stdio so that pipes are handed to the restored process
 * (--inherit-fd). criu runs as our child and restores the init as its own
 * sibling (--restore-sibling), so the init is our child too, in the cgroup
 * made from the bundle's config; the state directory is then written as for
 * a started container. */
#include "config.h"
#include "container.h"
#include "cgroup/cgroup.h"
#include "mounts.h"
#include "setup.h"
#include "ocirun.h"
#include "state.h"
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define DESCRIPTORS "descriptors.json"
#define NETNS_KEY "extRootNetNS"
#define MASKED_KEY "/dev/null"

/* ------------------------------------------------------------------------ */
/* criu's command line */

struct argv
{
  char **v;
  size_t n;
};

static void __attribute__ ((format (printf, 2, 3))) argv_add (struct argv *a, const char *fmt, ...)
{
  va_list ap;

  a->v = xrealloc (a->v, (a->n + 2) * sizeof (char *));
  va_start (ap, fmt);
  if (vasprintf (&a->v[a->n], fmt, ap) < 0)
    abort ();
  va_end (ap);
  a->v[++a->n] = NULL;
}

static void
argv_free (struct argv *a)
{
  for (size_t i = 0; i < a->n; i++)
    free (a->v[i]);
  free (a->v);
  a->v = NULL;
  a->n = 0;
}
#define cleanup_argv __attribute__ ((cleanup (argv_free)))

/* The options both directions share. */
static int
add_common (struct argv *a, const struct ocirun_criu_request *req, ocirun_error_t *err)
{
  const char *mode = req->manage_cgroups_mode;

  if (mode && strcmp (mode, "soft") != 0 && strcmp (mode, "full") != 0 && strcmp (mode, "strict") != 0
      && strcmp (mode, "ignore") != 0)
    return ocirun_make_error (err, -EINVAL, "--manage-cgroups-mode `%s`: must be soft, full, strict or ignore", mode);
  if (mode)
    argv_add (a, "--manage-cgroups=%s", mode);
  else
    argv_add (a, "--manage-cgroups");
  for (size_t i = 0; i < req->n_empty_ns; i++)
    {
      /* runc accepts only this one: criu then makes the namespace and
       * leaves its configuration to the caller (CNI on restore). */
      if (strcmp (req->empty_ns[i], "network") != 0)
        return ocirun_make_error (err, -EINVAL, "--empty-ns `%s`: only network is supported", req->empty_ns[i]);
      argv_add (a, "--empty-ns");
      argv_add (a, "net");
    }
  if (req->tcp_established)
    argv_add (a, "--tcp-established");
  if (req->ext_unix_sk)
    argv_add (a, "--ext-unix-sk");
  if (req->shell_job)
    argv_add (a, "--shell-job");
  if (req->file_locks)
    argv_add (a, "--file-locks");
  if (req->auto_dedup)
    argv_add (a, "--auto-dedup");
  if (req->lazy_pages)
    argv_add (a, "--lazy-pages");
  if (req->status_fd >= 0)
    argv_add (a, "--status-fd=%d", req->status_fd);
  return 0;
}

/* image_path (default ./checkpoint) and work_path (default: the image
 * directory), absolute, both created when missing. */
static int
image_dirs (const struct ocirun_criu_request *req, bool create_image, char **image, char **work, ocirun_error_t *err)
{
  char cwd[PATH_MAX];
  int ret;

  if (req->image_path && req->image_path[0] == '/')
    *image = xstrdup (req->image_path);
  else
    {
      if (getcwd (cwd, sizeof cwd) == NULL)
        return ocirun_make_error (err, errno, "getcwd");
      xasprintf (image, "%s/%s", cwd, req->image_path ? req->image_path : "checkpoint");
    }
  if (req->work_path == NULL)
    *work = xstrdup (*image);
  else if (req->work_path[0] == '/')
    *work = xstrdup (req->work_path);
  else
    {
      if (getcwd (cwd, sizeof cwd) == NULL)
        return ocirun_make_error (err, errno, "getcwd");
      xasprintf (work, "%s/%s", cwd, req->work_path);
    }
  if (create_image)
    {
      ret = ocirun_mkdir_p (*image, 0700, err);
      if (ret < 0)
        return ocirun_error_prefix (err, "image path");
    }
  ret = ocirun_mkdir_p (*work, 0700, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "work path");
  return 0;
}

/* The first "Error (...)" line of a criu log, for the message: criu prints
 * nothing else once given a log file, and its last error is always the
 * generic "Dumping FAILED." or "Restoring FAILED.". */
static char *
criu_log_error (const char *log)
{
  cleanup_free char *text = NULL;
  cleanup_error ocirun_error_t e = NULL;
  size_t len;
  char *first, *end;

  if (ocirun_read_file (log, &text, &len, &e) < 0)
    return NULL;
  first = strstr (text, "Error (");
  if (first == NULL)
    return NULL;
  end = strchr (first, '\n');
  return strndup (first, end ? (size_t)(end - first) : strlen (first));
}

/* Runs in criu's child before the exec: 0, or -errno with msg saying what failed. */
typedef int (*child_setup_fn) (void *data, char *msg, size_t msg_len);

/* Runs criu with a's arguments (a->v[0] is the action) and waits for it.
 * setup runs in the child before the exec; a failure there or of the exec
 * itself comes back through a close-on-exec pipe. */
static int
run_criu (struct ocirun_context *ctx, struct argv *a, const char *log, child_setup_fn setup, void *data,
          ocirun_error_t *err)
{
  const char *criu = ctx->criu ? ctx->criu : "criu";
  cleanup_close int rd = -1, wr = -1;
  char msg[512] = "";
  int fds[2], status;
  ssize_t n;
  pid_t pid;

  /* criu's argv[0] is the binary; a->v[0] is the action. */
  a->v = xrealloc (a->v, (a->n + 2) * sizeof (char *));
  memmove (a->v + 1, a->v, (a->n + 1) * sizeof (char *));
  a->v[0] = xstrdup (criu);
  a->n++;

  if (pipe2 (fds, O_CLOEXEC) < 0)
    return ocirun_make_error (err, errno, "pipe");
  rd = fds[0];
  wr = fds[1];
  ocirun_debug (ctx->log, "criu %s: log in %s", a->v[1], log);
  pid = fork ();
  if (pid < 0)
    return ocirun_make_error (err, errno, "fork");
  if (pid == 0)
    {
      int e = setup ? -setup (data, msg, sizeof msg) : 0;
      if (e == 0)
        {
          execvp (criu, a->v);
          e = errno;
          snprintf (msg, sizeof msg, "exec `%s`%s", criu,
                    e == ENOENT && ctx->criu == NULL ? " (install criu, or give its path with --criu)" : "");
        }
      if (ocirun_write_all (wr, &e, sizeof e) == (ssize_t)sizeof e)
        ocirun_write_all (wr, msg, strlen (msg));
      _exit (127);
    }
  ocirun_closep (&wr);
  {
    int e = 0;
    n = TEMP_FAILURE_RETRY_INT (read (rd, &e, sizeof e));
    if (n == (ssize_t)sizeof e)
      {
        ssize_t m = ocirun_read_all (rd, msg, sizeof msg - 1);
        msg[m > 0 ? m : 0] = '\0';
        TEMP_FAILURE_RETRY_INT (waitpid (pid, &status, 0));
        return ocirun_make_error (err, e, "criu %s: %s", a->v[1], msg);
      }
  }
  if (TEMP_FAILURE_RETRY_INT (waitpid (pid, &status, 0)) < 0)
    return ocirun_make_error (err, errno, "wait for criu");
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  {
    cleanup_free char *why = criu_log_error (log);
    if (WIFSIGNALED (status))
      return ocirun_make_error (err, -EIO, "criu %s killed by signal %d (log: %s)", a->v[1], WTERMSIG (status), log);
    return ocirun_make_error (err, -EIO, "criu %s failed (exit status %d): %s (log: %s)", a->v[1], WEXITSTATUS (status),
                              why ? why : "no error in its log", log);
  }
}

/* ------------------------------------------------------------------------ */
/* checkpoint */

/* runc's descriptors.json: where the init's stdio pointed. */
static int
write_descriptors (const char *image, pid_t pid, ocirun_error_t *err)
{
  char *links[3] = { NULL, NULL, NULL };
  cleanup_free char *json = NULL;
  cleanup_close int dfd = -1;
  int ret = 0;

  for (int i = 0; i < 3 && ret == 0; i++)
    {
      char proc[64], target[PATH_MAX];
      ssize_t n;

      snprintf (proc, sizeof proc, "/proc/%d/fd/%d", pid, i);
      n = readlink (proc, target, sizeof target - 1);
      if (n < 0)
        {
          /* A closed descriptor stays closed on restore. */
          if (errno != ENOENT)
            ret = ocirun_make_error (err, errno, "readlink `%s`", proc);
          n = 0;
        }
      target[n] = '\0';
      links[i] = xstrdup (target);
    }
  if (ret == 0)
    {
      json = ocispec_strings_to_json (links, 3);
      dfd = open (image, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
      if (dfd < 0)
        ret = ocirun_make_error (err, errno, "open image path `%s`", image);
      else
        ret = ocirun_write_file_atomic_at (dfd, DESCRIPTORS, json, strlen (json), 0600, err);
    }
  for (int i = 0; i < 3; i++)
    free (links[i]);
  return ret;
}

/* A masked file is the container's /dev/null bound over it: external, with
 * the key runc gives it ("/dev/null"), so that runc and ocirun restore each
 * other's images. Masked directories are tmpfs mounts criu keeps itself,
 * and a path that was missing was not masked at all. */
static int
add_masked_files (struct argv *a, const oci_config *cfg, pid_t pid, ocirun_error_t *err)
{
  cleanup_close int rootfd = -1;
  char proc[64];

  if (cfg->linux == NULL || cfg->linux->masked_paths_len == 0)
    return 0;
  snprintf (proc, sizeof proc, "/proc/%d/root", pid);
  rootfd = open (proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return ocirun_make_error (err, errno, "open `%s`", proc);
  for (size_t i = 0; i < cfg->linux->masked_paths_len; i++)
    {
      cleanup_error ocirun_error_t e = NULL;
      cleanup_close int fd = -1;
      struct stat sb;

      /* Resolved inside the container's root, whatever its symlinks say. */
      fd = ocirun_open_in_root (rootfd, cfg->linux->masked_paths[i], O_PATH | O_CLOEXEC, 0, &e);
      if (fd < 0 || fstat (fd, &sb) < 0 || !S_ISCHR (sb.st_mode))
        continue;
      argv_add (a, "--external=mnt[%s]:%s", cfg->linux->masked_paths[i], MASKED_KEY);
    }
  return 0;
}

int
ocirun_container_checkpoint (struct ocirun_context *ctx, const struct ocirun_criu_request *req, ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  cleanup_free char *image = NULL, *work = NULL, *log = NULL;
  cleanup_argv struct argv a = { 0 };
  const char *netns;
  int ret;

  ret = ocirun_load_container (ctx, true, true, &l, err);
  if (ret < 0)
    return ret;
  if (l.status != OCIRUN_STATUS_RUNNING && l.status != OCIRUN_STATUS_PAUSED)
    return ocirun_make_error (err, -EINVAL, "cannot checkpoint container `%s`: it is %s, not running", ctx->id,
                              ocirun_status_name (l.status));
  if (l.config->process && l.config->process->terminal)
    return ocirun_make_error (err, -EOPNOTSUPP,
                              "cannot checkpoint container `%s`: it has a terminal (process.terminal), whose master "
                              "criu hands back only over its RPC channel, which ocirun does not use",
                              ctx->id);

  ret = image_dirs (req, true, &image, &work, err);
  if (ret < 0)
    return ret;
  xasprintf (&log, "%s/dump.log", work);

  argv_add (&a, req->pre_dump ? "pre-dump" : "dump");
  argv_add (&a, "--tree=%d", l.st->pid);
  argv_add (&a, "--images-dir=%s", image);
  argv_add (&a, "--work-dir=%s", work);
  argv_add (&a, "--log-file=dump.log");
  argv_add (&a, "-v4");
  argv_add (&a, "--root=%s", l.st->rootfs);
  ret = add_common (&a, req, err);
  if (ret < 0)
    return ret;
  /* criu freezes the whole cgroup (no task can fork away while it walks the
   * tree); a paused container is already frozen and stays so. */
  if (l.st->freezer_dir && l.st->freezer_dir[0])
    argv_add (&a, "--freeze-cgroup=%s", l.st->freezer_dir);
  if (req->leave_running && !req->pre_dump)
    argv_add (&a, "--leave-running");
  if (req->pre_dump || req->parent_path)
    argv_add (&a, "--track-mem");
  if (req->parent_path)
    argv_add (&a, "--prev-images-dir=%s", req->parent_path);
  if (req->page_server)
    {
      const char *colon = strrchr (req->page_server, ':');
      if (colon == NULL || colon == req->page_server || colon[1] == '\0')
        return ocirun_make_error (err, -EINVAL, "--page-server `%s`: must be ADDRESS:PORT", req->page_server);
      argv_add (&a, "--page-server");
      argv_add (&a, "--address=%.*s", (int)(colon - req->page_server), req->page_server);
      argv_add (&a, "--port=%s", colon + 1);
    }
  /* A bind mount's source is outside the container: criu records only its
   * place, and restore binds the bundle's source there again. */
  for (size_t i = 0; i < l.config->mounts_len; i++)
    if (ocirun_mount_is_bind (l.config->mounts[i]))
      argv_add (&a, "--external=mnt[%s]:%s", l.config->mounts[i]->destination, l.config->mounts[i]->destination);
  ret = add_masked_files (&a, l.config, l.st->pid, err);
  if (ret < 0)
    return ret;
  netns = ocirun_config_netns_path (l.config);
  if (netns)
    {
      struct stat sb;
      if (stat (netns, &sb) < 0)
        return ocirun_make_error (err, errno, "network namespace `%s`", netns);
      argv_add (&a, "--external=net[%lu]:%s", (unsigned long)sb.st_ino, NETNS_KEY);
    }

  if (!req->pre_dump)
    {
      ret = write_descriptors (image, l.st->pid, err);
      if (ret < 0)
        return ocirun_error_prefix (err, "checkpoint container `%s`", ctx->id);
    }
  ret = run_criu (ctx, &a, log, NULL, NULL, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "checkpoint container `%s`", ctx->id);

  if (req->leave_running || req->pre_dump)
    return 0;
  /* criu killed the processes after the dump: the container is gone, and
   * its state, cgroup and poststop hooks go as on delete (runc too). */
  ocirun_wait_gone (l.st->pid, l.st->pid_start_time);
  if (l.cg)
    {
      cleanup_error ocirun_error_t e = NULL;
      ocirun_cgroup_kill (l.cg, SIGKILL, &e);
    }
  return ocirun_destroy_container (ctx, &l, err);
}

/* ------------------------------------------------------------------------ */
/* restore */

struct restore_setup
{
  const char *rootfs;
  int netns_fd;
  const sigset_t *old_mask;
};

/* In criu's child: a private mount namespace where the rootfs is a mount
 * point (criu's --root must be one), so nothing is left on the host's
 * mounts whatever happens; the network namespace fd survives the exec; the
 * signals a foreground restore relays are unblocked again. */
static int
restore_child_setup (void *data, char *msg, size_t msg_len)
{
  struct restore_setup *s = data;
  const char *what = NULL;
  int e;

  if (s->old_mask && sigprocmask (SIG_SETMASK, s->old_mask, NULL) < 0)
    what = "restore the signal mask";
  else if (unshare (CLONE_NEWNS) < 0)
    what = "unshare the mount namespace";
  else if (mount (NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    what = "make / a slave mount";
  else if (mount (s->rootfs, s->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    what = "bind mount the rootfs on itself";
  else if (s->netns_fd >= 0 && fcntl (s->netns_fd, F_SETFD, 0) < 0)
    what = "keep the network namespace open";
  if (what == NULL)
    return 0;
  e = errno;
  snprintf (msg, msg_len, "%s", what);
  return -e;
}

static int
read_descriptors (const char *image, char ***out, size_t *len, ocirun_error_t *err)
{
  cleanup_free char *path = NULL, *text = NULL;
  ocispec_errors errs = { 0 };
  size_t n;
  int ret;

  *out = NULL;
  *len = 0;
  xasprintf (&path, "%s/%s", image, DESCRIPTORS);
  ret = ocirun_read_file (path, &text, &n, err);
  if (ret == -ENOENT)
    {
      /* An image made by criu alone: nothing to hand over. */
      ocirun_error_free (err);
      return 0;
    }
  if (ret < 0)
    return ret;
  *out = ocispec_strings_parse_data (text, n, len, &errs);
  if (*out == NULL)
    {
      ret = ocirun_make_error (err, -EINVAL, "`%s`: %s", path, errs.len ? errs.msgs[0] : "invalid");
      ocispec_errors_free (&errs);
      return ret;
    }
  return 0;
}

static int
read_pid (const char *path, pid_t *pid, ocirun_error_t *err)
{
  cleanup_free char *text = NULL;
  size_t len;
  char *end;
  long v;
  int ret = ocirun_read_file (path, &text, &len, err);

  if (ret < 0)
    return ret;
  errno = 0;
  v = strtol (text, &end, 10);
  if (errno || end == text || v <= 0 || v > INT_MAX)
    return ocirun_make_error (err, -EINVAL, "`%s`: not a pid", path);
  *pid = (pid_t)v;
  return 0;
}

int
ocirun_container_restore (struct ocirun_context *ctx, const struct ocirun_criu_request *req, int *exit_status,
                          ocirun_error_t *err)
{
  cleanup_free char *bundle = NULL, *config_text = NULL, *rootfs = NULL;
  cleanup_free char *image = NULL, *work = NULL, *log = NULL, *pidfile = NULL, *inventory = NULL;
  cleanup_strv char **descriptors = NULL;
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  cleanup_close int netns_fd = -1;
  cleanup_relay struct ocirun_relay relay = { 0 };
  cleanup_argv struct argv a = { 0 };
  struct restore_setup setup;
  size_t config_len = 0, n_descriptors = 0;
  const char *netns, *cgpath;
  bool reserved = false;
  pid_t pid = -1;
  int ret;

  *exit_status = 0;
  ret = ocirun_validate_id (ctx->id, err);
  if (ret < 0)
    return ret;
  ret = ocirun_read_bundle (ctx, &bundle, &config_text, &config_len, &l.config, err);
  if (ret < 0)
    return ret;
  if (l.config->process == NULL)
    return ocirun_make_error (err, -EINVAL, "config.json: process: required to restore a container");
  if (l.config->process->terminal)
    return ocirun_make_error (err, -EOPNOTSUPP,
                              "cannot restore container `%s` with a terminal (process.terminal): criu hands the "
                              "terminal's master back only over its RPC channel, which ocirun does not use",
                              ctx->id);
  if (ctx->console_socket)
    return ocirun_make_error (err, -EINVAL,
                              "--console-socket given but process.terminal is false: no terminal to send");
  ret = ocirun_resolve_rootfs (bundle, l.config, &rootfs, err);
  if (ret < 0)
    return ret;

  ret = image_dirs (req, false, &image, &work, err);
  if (ret < 0)
    return ret;
  xasprintf (&inventory, "%s/inventory.img", image);
  if (access (inventory, F_OK) < 0)
    return ocirun_make_error (err, errno, "no checkpoint image in `%s`: `%s`", image, inventory);
  ret = read_descriptors (image, &descriptors, &n_descriptors, err);
  if (ret < 0)
    return ret;
  xasprintf (&log, "%s/restore.log", work);
  xasprintf (&pidfile, "%s/restore.pid", work);
  unlink (pidfile);

  netns = ocirun_config_netns_path (l.config);
  if (netns)
    {
      netns_fd = open (netns, O_RDONLY | O_CLOEXEC);
      if (netns_fd < 0)
        return ocirun_make_error (err, errno, "network namespace `%s`", netns);
    }

  l.dirfd = ocirun_state_reserve (ctx->root, ctx->id, err);
  if (l.dirfd < 0)
    return l.dirfd;
  reserved = true;
  ret = ocirun_write_file_atomic_at (l.dirfd, "config.json", config_text, config_len, 0600, err);
  if (ret < 0)
    goto fail;
  ret = ocirun_container_cgroup_create (ctx, l.config, &l.cg, err);
  if (ret < 0)
    goto fail;
  if (l.config->hooks && (l.config->hooks->prestart_len || l.config->hooks->create_runtime_len))
    ocirun_warning (ctx->log, "restore: the config's prestart and createRuntime hooks are not run (criu "
                              "restores the namespaces itself)");

  argv_add (&a, "restore");
  argv_add (&a, "--images-dir=%s", image);
  argv_add (&a, "--work-dir=%s", work);
  argv_add (&a, "--log-file=restore.log");
  argv_add (&a, "-v4");
  argv_add (&a, "--root=%s", rootfs);
  argv_add (&a, "--restore-detached");
  argv_add (&a, "--restore-sibling");
  argv_add (&a, "--pidfile=%s", pidfile);
  ret = add_common (&a, req, err);
  if (ret < 0)
    goto fail;
  /* The tasks go into the cgroup made above: criu's paths are relative to
   * the container's cgroup at dump time. */
  cgpath = l.cg ? ocirun_cgroup_path (l.cg) : NULL;
  if (cgpath && cgpath[0] == '/' && strchr (cgpath, '\n') == NULL)
    argv_add (&a, "--cgroup-root=%s", cgpath);
  for (size_t i = 0; i < l.config->mounts_len; i++)
    {
      const oci_mount *m = l.config->mounts[i];
      if (ocirun_mount_is_bind (m))
        argv_add (&a, "--external=mnt[%s]:%s", m->destination, m->source ? m->source : "");
    }
  if (l.config->linux && l.config->linux->masked_paths_len)
    argv_add (&a, "--external=mnt[%s]:/dev/null", MASKED_KEY);
  if (netns_fd >= 0)
    argv_add (&a, "--inherit-fd=fd[%d]:%s", netns_fd, NETNS_KEY);
  /* Our stdio becomes the container's where it was a pipe (what engines
   * give a container); files and terminals criu reopens itself. */
  for (size_t i = 0; i < n_descriptors && i < 3; i++)
    if (strncmp (descriptors[i], "pipe:", 5) == 0)
      argv_add (&a, "--inherit-fd=fd[%zu]:%s", i, descriptors[i]);
  if (req->lsm_profile)
    argv_add (&a, "--lsm-profile=%s", req->lsm_profile);
  if (req->lsm_mount_context)
    argv_add (&a, "--lsm-mount-context=%s", req->lsm_mount_context);

  if (!ctx->detach)
    {
      ocirun_relay_begin (&relay);
      /* Orphans of the container are reparented to us, to be reaped. */
      if (!req->no_subreaper && prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        {
          ret = ocirun_make_error (err, errno, "prctl PR_SET_CHILD_SUBREAPER");
          goto fail;
        }
    }
  setup.rootfs = rootfs;
  setup.netns_fd = netns_fd;
  setup.old_mask = relay.blocked ? &relay.old : NULL;
  ret = run_criu (ctx, &a, log, restore_child_setup, &setup, err);
  if (ret == 0)
    ret = read_pid (pidfile, &pid, err);
  if (ret < 0)
    goto fail;

  l.st = ocirun_new_status (ctx, pid, bundle, rootfs, l.config, l.cg, ctx->detach);
  ret = ocirun_state_write (l.dirfd, l.st, err);
  if (ret == 0 && ctx->pid_file)
    ret = ocirun_write_pid_file (ctx->pid_file, pid, err);
  if (ret < 0)
    goto fail;
  if (ctx->detach)
    return 0;

  /* As run does: the lock goes before the wait, so that state, exec and
   * kill work on the container meanwhile; delete takes it again. */
  ocirun_loaded_free (&l);
  ret = ocirun_wait_process (pid, -1, &relay, exit_status, err);
  if (ret < 0)
    return ret;
  return ocirun_container_delete (ctx, true, err);

fail:
  if (pid > 0)
    {
      kill (pid, SIGKILL);
      TEMP_FAILURE_RETRY_INT (waitpid (pid, NULL, 0));
    }
  if (l.cg)
    {
      cleanup_error ocirun_error_t e = NULL;
      ocirun_cgroup_kill (l.cg, SIGKILL, &e);
      ocirun_error_free (&e);
      ocirun_cgroup_destroy (l.cg, &e);
    }
  if (reserved)
    {
      cleanup_error ocirun_error_t e = NULL;
      ocirun_state_remove (ctx->root, ctx->id, &e);
    }
  return ocirun_error_prefix (err, "restore container `%s`", ctx->id);
}
