/* `exec`: builds the process to run (a process.json, or the container's own
 * process with runc exec's overrides), then starts it inside the container
 * through bootstrap.c and, unless detached, waits for it. */
#include "config.h"
#include "bootstrap.h"
#include "container.h"
#include "namespaces.h"
#include "ocirun.h"
#include "pidref.h"
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void
process_freep (oci_process **p)
{
  if (*p)
    oci_process_free (*p);
}
#define cleanup_process __attribute__ ((cleanup (process_freep)))

static void
strv_append (char ***v, size_t *len, bool *has, const char *s)
{
  *v = xrealloc (*v, (*len + 2) * sizeof (char *));
  (*v)[(*len)++] = xstrdup (s);
  (*v)[*len] = NULL;
  if (has)
    *has = true;
}

static int
parse_u32 (const char *s, uint32_t *out)
{
  char *end;
  unsigned long long v;

  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno || *end || v > UINT32_MAX)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

static int
errors_to_error (const char *what, ocispec_errors *errs, ocirun_error_t *err)
{
  int ret = ocirun_make_error (err, -EINVAL, "%s: %s", what, errs->len ? errs->msgs[0] : "cannot be parsed");
  ocispec_errors_free (errs);
  return ret;
}

/* The process to run: --process as is, or the container's process (a deep
 * copy through JSON) with the command line's overrides. */
static int
build_process (const oci_config *cfg, const struct ocirun_exec_request *req, oci_process **out, ocirun_error_t *err)
{
  ocispec_errors errs = { 0 };
  cleanup_process oci_process *p = NULL;

  if (req->process_file)
    {
      p = oci_process_parse_file (req->process_file, &errs);
      if (p == NULL)
        return errors_to_error (req->process_file, &errs, err);
    }
  else
    {
      cleanup_free char *json = NULL;
      size_t len = 0;

      if (cfg->process == NULL)
        return ocirun_make_error (err, -EINVAL, "the container's config has no process to base the exec on");
      json = oci_process_to_json (cfg->process, 0, &len);
      p = oci_process_parse_data (json, len, &errs);
      if (p == NULL)
        return errors_to_error ("process", &errs, err);

      ocirun_strv_free (p->args);
      p->args = NULL;
      p->args_len = 0;
      for (size_t i = 0; i < req->n_args; i++)
        strv_append (&p->args, &p->args_len, &p->has_args, req->args[i]);
      p->terminal = req->tty;
      p->has_terminal = true;
      if (!req->tty && p->console_size)
        {
          oci_box_free (p->console_size);
          p->console_size = NULL;
        }
    }

  /* Overrides apply to a --process file too, as with runc. */
  for (size_t i = 0; i < req->n_env; i++)
    strv_append (&p->env, &p->env_len, &p->has_env, req->env[i]);
  if (req->cwd)
    {
      free (p->cwd);
      p->cwd = xstrdup (req->cwd);
    }
  if (req->user)
    {
      cleanup_free char *u = xstrdup (req->user);
      char *colon = strchr (u, ':');
      uint32_t uid, gid;

      if (colon)
        *colon = '\0';
      if (parse_u32 (u, &uid) < 0 || (colon && parse_u32 (colon + 1, &gid) < 0))
        return ocirun_make_error (err, -EINVAL, "--user `%s`: expected <uid>[:<gid>] as numbers", req->user);
      if (p->user == NULL)
        p->user = xmalloc0 (sizeof *p->user);
      p->user->uid = uid;
      p->user->has_uid = true;
      if (colon)
        {
          p->user->gid = gid;
          p->user->has_gid = true;
        }
    }
  if (req->n_additional_gids)
    {
      if (p->user == NULL)
        p->user = xmalloc0 (sizeof *p->user);
      for (size_t i = 0; i < req->n_additional_gids; i++)
        {
          uint32_t g;
          if (parse_u32 (req->additional_gids[i], &g) < 0)
            return ocirun_make_error (err, -EINVAL, "--additional-gids `%s`: not a number", req->additional_gids[i]);
          p->user->additional_gids
              = xrealloc (p->user->additional_gids, (p->user->additional_gids_len + 1) * sizeof (uint32_t));
          p->user->additional_gids[p->user->additional_gids_len++] = g;
          p->user->has_additional_gids = true;
        }
    }
  if (req->n_caps)
    {
      oci_capabilities *c;
      if (p->capabilities == NULL)
        p->capabilities = xmalloc0 (sizeof *p->capabilities);
      c = p->capabilities;
      for (size_t i = 0; i < req->n_caps; i++)
        {
          strv_append (&c->bounding, &c->bounding_len, &c->has_bounding, req->caps[i]);
          strv_append (&c->effective, &c->effective_len, &c->has_effective, req->caps[i]);
          strv_append (&c->permitted, &c->permitted_len, &c->has_permitted, req->caps[i]);
          /* Ambient needs inheritable, which --cap does not add: only
           * extend an ambient set the container already uses (runc does). */
          if (c->ambient_len)
            strv_append (&c->ambient, &c->ambient_len, &c->has_ambient, req->caps[i]);
        }
    }
  if (req->no_new_privs)
    {
      p->no_new_privileges = true;
      p->has_no_new_privileges = true;
    }
  if (req->apparmor)
    {
      free (p->apparmor_profile);
      p->apparmor_profile = xstrdup (req->apparmor);
    }
  if (req->process_label)
    {
      free (p->selinux_label);
      p->selinux_label = xstrdup (req->process_label);
    }
  if (p->args_len == 0)
    return ocirun_make_error (err, -EINVAL, "exec: no command to run (args is empty)");
  if (p->cwd == NULL || p->cwd[0] != '/')
    return ocirun_make_error (err, -EINVAL, "exec: cwd `%s` must be an absolute path", p->cwd ? p->cwd : "");
  *out = steal_pointer (&p);
  return 0;
}

int
ocirun_container_exec (struct ocirun_context *ctx, const struct ocirun_exec_request *req, int *exit_status,
                       ocirun_error_t *err)
{
  cleanup_loaded struct ocirun_loaded l = { .dirfd = -1 };
  cleanup_process oci_process *p = NULL;
  cleanup_pidref struct ocirun_pidref init = { .fd = -1 };
  cleanup_relay struct ocirun_relay relay = { .blocked = false };
  cleanup_close int master = -1, init_root = -1;
  cleanup_cgroup struct ocirun_cgroup *sub_cg = NULL;
  struct ocirun_exec_spawn e = { 0 };
  int ns_flags = 0, ret;

  *exit_status = 0;
  ret = ocirun_load_container (ctx, false, true, &l, err);
  if (ret < 0)
    return ret;
  switch (l.status)
    {
    case OCIRUN_STATUS_STOPPED:
      return ocirun_make_error (err, -EINVAL, "cannot exec in a stopped container");
    case OCIRUN_STATUS_PAUSED:
      if (!req->ignore_paused)
        return ocirun_make_error (err, -EINVAL, "cannot exec in a paused container (use --ignore-paused to override)");
      break;
    default:
      break;
    }
  if (req->n_cgroups)
    {
      if (l.cg == NULL)
        return ocirun_make_error (err, -EINVAL, "exec --cgroup: the container has no cgroup");
      ret = ocirun_cgroup_sub (l.cg, req->cgroups, req->n_cgroups, &sub_cg, err);
      if (ret < 0)
        return ret;
    }

  ret = build_process (l.config, req, &p, err);
  if (ret < 0)
    return ret;
  if (p->terminal && req->detach && req->console_socket == NULL)
    return ocirun_make_error (err, -EINVAL, "cannot allocate a terminal for a detached exec without --console-socket");
  if (!p->terminal && req->console_socket)
    return ocirun_make_error (err, -EINVAL, "--console-socket given but no terminal was asked for (--tty)");

  if (l.config->linux)
    for (size_t i = 0; i < l.config->linux->namespaces_len; i++)
      ns_flags |= ocirun_ns_flag (l.config->linux->namespaces[i]->type);

  if (ocirun_pidref_open (&init, l.st->pid, l.st->pid_start_time) < 0)
    return ocirun_make_error (err, -ESRCH, "cannot exec: the container's init is gone");
  {
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/root", l.st->pid);
    init_root = open (path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    /* The pid was checked (through its pidfd where there is one): make sure
     * the root we opened still belongs to that process. */
    if (init_root < 0 || !ocirun_pidref_alive (&init))
      return ocirun_make_error (err, -ESRCH, "cannot exec: the container's init is gone");
  }

  e.config = l.config;
  e.process = p;
  e.init = init;
  e.init_root = init_root;
  e.ns_flags = ns_flags;
  e.userns = ns_flags & CLONE_NEWUSER;
  e.cg = sub_cg ? sub_cg : l.cg;
  e.console_slave_fd = -1;
  e.want_console = p->terminal;
  e.console_master = -1;
  e.preserve_fds = req->preserve_fds;
  e.log = ctx->log;
  if (!req->detach)
    ocirun_relay_begin (&relay);
  ret = ocirun_spawn_exec (&e, err);
  if (ret < 0)
    {
      *exit_status = 255;
      return ocirun_error_prefix (err, "exec in container `%s`", ctx->id);
    }
  master = e.console_master;
  if (master >= 0 && req->console_socket)
    {
      ret = ocirun_send_console (req->console_socket, master, err);
      if (ret < 0)
        goto kill_it;
      close (master);
      master = -1;
    }
  if (req->pid_file)
    {
      ret = ocirun_write_pid_file (req->pid_file, e.pid, err);
      if (ret < 0)
        goto kill_it;
    }
  /* Release the state lock: a long exec must not block `delete`. */
  ocirun_loaded_free (&l);
  if (req->detach)
    return 0;
  return ocirun_wait_process (e.pid, master, &relay, exit_status, err);

kill_it:
  kill (e.pid, SIGKILL);
  waitpid (e.pid, NULL, 0);
  return ret;
}
