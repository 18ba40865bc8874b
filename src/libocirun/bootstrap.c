/* The container's init is started without re-executing the runtime: the
 * parent clone3()s straight into the new namespaces and the child runs the
 * library's setup code from its copy of the parent's memory, then execve()s
 * the container process. The host binary is therefore never exec'd inside
 * the container and no /proc/self/exe of it is reachable from there.
 *
 * When a namespace is joined by path, an intermediate child joins it first
 * (with host privileges, user namespace first), unshares the new ones, and
 * forks the init with CLONE_PARENT so the init is still the caller's child.
 */
#include "config.h"
#include "bootstrap.h"
#include "container.h"
#include "devices.h"
#include "intelrdt.h"
#include "mounts.h"
#include "netdev.h"
#include "seccomp-filter.h"
#include "util.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif

/* The kernel's struct clone_args (v2, with cgroup); declared here so that
 * <linux/sched.h> does not clash with <sched.h>. */
struct ocirun_clone_args
{
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};

enum sync_type
{
  SYNC_GO = 1,       /* parent -> init: maps written, cgroup joined; value = host pid */
  SYNC_MAPS,         /* child -> parent: write my uid/gid maps */
  SYNC_MAPS_DONE,    /* parent -> child */
  SYNC_PID,          /* intermediate -> parent: value = the init's pid */
  SYNC_HOOKS,        /* init -> parent: run prestart + createRuntime hooks */
  SYNC_HOOKS_DONE,   /* parent -> init */
  SYNC_SECCOMP_FD,   /* init -> parent: the notify listener fd (SCM_RIGHTS) */
  SYNC_SECCOMP_DONE, /* parent -> init */
  SYNC_CONSOLE,      /* child -> parent: the pty master (SCM_RIGHTS) */
  SYNC_IDMAP,        /* parent -> init: an idmapped tree for mounts[value] (SCM_RIGHTS) */
  SYNC_READY,        /* init -> parent: waiting for start */
  SYNC_ERROR,        /* child -> parent: text = the error, value = errno */
};

struct sync_msg
{
  int32_t type;
  int32_t value;
  char text[4000];
};

/* One message with an optional fd attached (SCM_RIGHTS). */
static int
send_with_fd (int sock, const void *buf, size_t len, int pass_fd)
{
  struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  char cbuf[CMSG_SPACE (sizeof (int))];

  if (pass_fd >= 0)
    {
      struct cmsghdr *cm;
      memset (cbuf, 0, sizeof cbuf);
      mh.msg_control = cbuf;
      mh.msg_controllen = sizeof cbuf;
      cm = CMSG_FIRSTHDR (&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (cm), &pass_fd, sizeof (int));
    }
  if (TEMP_FAILURE_RETRY_INT (sendmsg (sock, &mh, MSG_NOSIGNAL)) < 0)
    return -errno;
  return 0;
}

static int
sync_send (int fd, int type, int value, const char *text, int pass_fd)
{
  struct sync_msg m = { .type = type, .value = value };
  size_t len = offsetof (struct sync_msg, text);

  if (text)
    {
      size_t tl = strnlen (text, sizeof m.text - 1);
      memcpy (m.text, text, tl);
      m.text[tl] = '\0';
      len += tl + 1;
    }
  return send_with_fd (fd, &m, len, pass_fd);
}

/* Returns the message type, 0 on EOF (the peer died), or -errno. */
static int
sync_recv (int fd, struct sync_msg *m, int *recv_fd)
{
  struct iovec iov = { .iov_base = m, .iov_len = sizeof *m };
  char cbuf[CMSG_SPACE (sizeof (int))];
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  ssize_t r;

  memset (m, 0, offsetof (struct sync_msg, text) + 1);
  r = TEMP_FAILURE_RETRY_INT (recvmsg (fd, &mh, MSG_CMSG_CLOEXEC));
  if (r < 0)
    return -errno;
  if (r == 0)
    return 0;
  if ((size_t)r < offsetof (struct sync_msg, text))
    return -EPROTO;
  if ((size_t)r < sizeof *m)
    ((char *)m)[r < (ssize_t)sizeof *m ? r : (ssize_t)sizeof *m - 1] = '\0';
  m->text[sizeof m->text - 1] = '\0';
  if (recv_fd)
    {
      struct cmsghdr *cm = CMSG_FIRSTHDR (&mh);
      *recv_fd = -1;
      if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
        memcpy (recv_fd, CMSG_DATA (cm), sizeof (int));
    }
  return m->type;
}

/* ------------------------------------------------------------------------ */
/* The child side. Everything here runs in the new process; errors go back to
 * the parent as SYNC_ERROR and the process exits. */

struct child
{
  struct ocirun_spawn *s;
  int sock;
  bool parent_waiting; /* false once SYNC_READY was sent (the parent may be gone) */
};

static void __attribute__ ((noreturn)) child_fail (struct child *ch, ocirun_error_t *err, int exit_code)
{
  const char *msg = (err && *err) ? (*err)->msg : "unknown error";
  int status = (err && *err) ? (*err)->status : 0;

  if (ch->parent_waiting)
    sync_send (ch->sock, SYNC_ERROR, status, msg, -1);
  else
    {
      /* After SYNC_READY nobody waits on the socket: the container's stderr
       * is the only place left to say what went wrong. */
      dprintf (STDERR_FILENO, "ocirun: %s\n", msg);
    }
  _exit (exit_code);
}

static int
child_expect (struct child *ch, int type, int *value, ocirun_error_t *err)
{
  struct sync_msg m;
  int r = sync_recv (ch->sock, &m, NULL);
  if (r <= 0)
    return ocirun_make_error (err, r < 0 ? -r : EPIPE, "wait for the runtime");
  if (r != type)
    return ocirun_make_error (err, -EPROTO, "unexpected message %d from the runtime (wanted %d)", r, type);
  if (value)
    *value = m.value;
  return 0;
}

static int
become_container_root (ocirun_error_t *err)
{
  /* In a new user namespace the process starts as the overflow id; root of
   * the namespace is what every later step (mounts, chown) expects. */
  if (setresgid (0, 0, 0) < 0)
    return ocirun_make_error (err, errno, "setresgid to root of the user namespace");
  if (setresuid (0, 0, 0) < 0)
    return ocirun_make_error (err, errno, "setresuid to root of the user namespace");
  return 0;
}

/* Opens a pty from the container's own devpts instance (so the slave is a
 * /dev/pts/N that exists inside), sends the master to the parent and returns
 * the slave. Without a devpts mount in the container the host's is used. */
static int
open_console (int sock, int rootfs_fd, const oci_box *size, int *slave, ocirun_error_t *err)
{
  cleanup_close int master = -1;
  int ret;

  if (rootfs_fd >= 0)
    {
      master = ocirun_open_in_root (rootfs_fd, "/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0, err);
      if (master < 0)
        {
          if ((*err)->status != ENOENT)
            return master;
          ocirun_error_free (err);
        }
    }
  if (master < 0)
    {
      master = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (master < 0)
        return ocirun_make_error (err, errno, "open /dev/ptmx");
    }
  ret = ocirun_pty_from_master (master, size, slave, err);
  if (ret < 0)
    return ret;
  if (sync_send (sock, SYNC_CONSOLE, 0, NULL, master) < 0)
    {
      close (*slave);
      return ocirun_make_error (err, errno, "send the pty master to the runtime");
    }
  return 0;
}

static int
wait_start_cb (void *data, ocirun_error_t *err)
{
  struct child *ch = data;
  char b;
  ssize_t r;

  /* `create` exits as soon as it reads SYNC_READY: the init must outlive it. */
  if (prctl (PR_SET_PDEATHSIG, 0) < 0)
    return ocirun_make_error (err, errno, "prctl PR_SET_PDEATHSIG");
  if (sync_send (ch->sock, SYNC_READY, 0, NULL, -1) < 0)
    return ocirun_make_error (err, errno, "tell the runtime the container is ready");
  ch->parent_waiting = false;

  /* `start` writes one byte into exec.fifo; until then this read blocks.
   * Our own O_RDWR descriptor keeps the fifo open, so there is no EOF. */
  do
    r = read (ch->s->fifo_fd, &b, 1);
  while (r < 0 && errno == EINTR);
  if (r != 1)
    return ocirun_make_error (err, r < 0 ? errno : EPIPE, "wait for start on exec.fifo");
  close (ch->s->fifo_fd);
  ch->s->fifo_fd = -1;
  return 0;
}

static int
start_container_cb (void *data, ocirun_error_t *err)
{
  struct child *ch = data;
  const oci_hooks *h = ch->s->c->config->hooks;
  cleanup_free char *state = NULL;

  if (h == NULL || h->start_container_len == 0)
    return 0;
  state = ocirun_hook_state_json (ch->s->c, "running", ch->s->pid);
  return ocirun_run_hooks (h->start_container, h->start_container_len, "startContainer", state, ch->s->c->log, err);
}

static int
seccomp_listener_cb (void *data, int fd, ocirun_error_t *err)
{
  struct child *ch = data;
  cleanup_close int owned = fd;

  if (!ch->parent_waiting)
    return ocirun_make_error (err, -EINVAL, "seccomp listener created after the runtime returned");
  if (sync_send (ch->sock, SYNC_SECCOMP_FD, 0, NULL, fd) < 0)
    return ocirun_make_error (err, errno, "send the seccomp listener to the runtime");
  return child_expect (ch, SYNC_SECCOMP_DONE, NULL, err);
}

static int
cmp_int (const void *a, const void *b)
{
  return *(const int *)a - *(const int *)b;
}

/* Closes every fd past stdio and the preserved ones, except `keep` (the sync
 * socket, exec.fifo: close-on-exec already). Closing, not just marking them
 * close-on-exec, matters: until execve a cwd like /proc/self/fd/N from the
 * config would otherwise reach a host directory (CVE-2024-21626). */
static int
seal_fds (int preserve_fds, int *keep, size_t nkeep, ocirun_error_t *err)
{
  unsigned first = 3 + (preserve_fds > 0 ? preserve_fds : 0);
  unsigned lo = first;

  for (int fd = 3; fd < (int)first; fd++)
    {
      int flags = fcntl (fd, F_GETFD);
      if (flags >= 0 && (flags & FD_CLOEXEC))
        fcntl (fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
  qsort (keep, nkeep, sizeof *keep, cmp_int);
  for (size_t i = 0; i <= nkeep; i++)
    {
      unsigned hi = i < nkeep ? (unsigned)keep[i] : ~0U;
      if (i < nkeep && (keep[i] < 0 || (unsigned)keep[i] < lo))
        continue;
      if (hi > lo && syscall (SYS_close_range, lo, i < nkeep ? hi - 1 : hi, 0) < 0)
        {
          /* Kernels before 5.11: walk /proc/self/fd. */
          cleanup_dir DIR *d = opendir ("/proc/self/fd");
          struct dirent *de;
          if (d == NULL)
            return ocirun_make_error (err, errno, "open /proc/self/fd");
          while ((de = readdir (d)))
            {
              int fd = atoi (de->d_name);
              bool kept = false;
              for (size_t k = 0; k < nkeep; k++)
                kept |= keep[k] == fd;
              if (fd >= (int)first && fd != dirfd (d) && !kept)
                close (fd);
            }
          return 0;
        }
      if (i < nkeep)
        lo = hi + 1;
    }
  return 0;
}

static void __attribute__ ((noreturn)) init_main (struct child *ch)
{
  cleanup_error ocirun_error_t err = NULL;
  struct ocirun_spawn *s = ch->s;
  struct ocirun_container *c = s->c;
  const oci_config *cfg = c->config;
  const oci_hooks *hooks = cfg->hooks;
  struct ocirun_exec_hooks eh = { .data = ch,
                                  .wait_start = wait_start_cb,
                                  .start_container = start_container_cb,
                                  .seccomp_listener = seccomp_listener_cb };
  int hostpid = 0;

  /* Die with the runtime while it still drives us, instead of lingering. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  /* Until execve this is a copy of the runtime: processes of a shared pid
   * namespace must not reach its memory or /proc/PID/exe. In a user
   * namespace its root is unprivileged on the host, and /proc/self must stay
   * writable by it (oom_score_adj, attr), so stay dumpable there. */
  if (!c->userns)
    prctl (PR_SET_DUMPABLE, 0);

  /* The container starts with no blocked signals and default dispositions
   * (an ignored signal would survive execve). */
  {
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
      if (sig != SIGKILL && sig != SIGSTOP)
        signal (sig, SIG_DFL);
  }

  /* Idmapped trees made on the host side may come before GO. */
  for (;;)
    {
      struct sync_msg m;
      int rfd = -1, r = sync_recv (ch->sock, &m, &rfd);
      if (r == SYNC_IDMAP && rfd >= 0 && m.value >= 0 && (size_t)m.value < cfg->mounts_len)
        {
          if (c->idmap_trees == NULL)
            {
              c->idmap_trees = xmalloc0 (cfg->mounts_len * sizeof (int));
              for (size_t i = 0; i < cfg->mounts_len; i++)
                c->idmap_trees[i] = -1;
            }
          c->idmap_trees[m.value] = rfd;
          continue;
        }
      if (r == SYNC_GO)
        {
          hostpid = m.value;
          break;
        }
      ocirun_make_error (&err, r < 0 ? -r : EPROTO, "wait for the runtime (message %d)", r);
      child_fail (ch, &err, 1);
    }
  s->pid = hostpid;

  if (ocirun_cgroup_enter_self (s->cg, s->placed_unified, &err) < 0)
    child_fail (ch, &err, 1);
  if (s->cgroupns_pending && unshare (CLONE_NEWCGROUP) < 0)
    {
      ocirun_make_error (&err, errno, "unshare the cgroup namespace");
      child_fail (ch, &err, 1);
    }

  if (c->userns && become_container_root (&err) < 0)
    child_fail (ch, &err, 1);

  if (!c->no_new_keyring)
    {
      /* A fresh session keyring keeps the host's keys out of reach; kernels
       * or seccomp profiles without keyctl are not an error (runc agrees). */
      if (syscall (SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c->id) < 0 && errno != ENOSYS && errno != EPERM
          && errno != EACCES)
        {
          ocirun_make_error (&err, errno, "join a new session keyring");
          child_fail (ch, &err, 1);
        }
    }

  if (ocirun_set_hostname_sysctl (cfg, &err) < 0)
    child_fail (ch, &err, 1);

  if (ocirun_rootfs_prepare (c, &err) < 0)
    child_fail (ch, &err, 1);

  if (s->want_console)
    {
      char slave_path[64];
      if (open_console (ch->sock, c->rootfs_fd, cfg->process->console_size, &s->console_slave_fd, &err) < 0)
        child_fail (ch, &err, 1);
      snprintf (slave_path, sizeof slave_path, "/proc/self/fd/%d", s->console_slave_fd);
      c->console_slave = slave_path;
      if (ocirun_setup_console (c, &err) < 0)
        child_fail (ch, &err, 1);
      c->console_slave = NULL;
    }

  if (hooks && (hooks->prestart_len || hooks->create_runtime_len))
    {
      if (sync_send (ch->sock, SYNC_HOOKS, 0, NULL, -1) < 0)
        {
          ocirun_make_error (&err, errno, "ask the runtime to run createRuntime hooks");
          child_fail (ch, &err, 1);
        }
      if (child_expect (ch, SYNC_HOOKS_DONE, NULL, &err) < 0)
        child_fail (ch, &err, 1);
    }
  if (hooks && hooks->create_container_len)
    {
      cleanup_free char *state = ocirun_hook_state_json (c, "creating", s->pid);
      if (ocirun_run_hooks (hooks->create_container, hooks->create_container_len, "createContainer", state, c->log,
                            &err)
          < 0)
        child_fail (ch, &err, 1);
    }

  if (ocirun_rootfs_finalize (c, &err) < 0)
    child_fail (ch, &err, 1);

  /* The init leads a session of its own, as runc's does: one whose leader
   * is outside the container's pid namespace cannot be checkpointed (criu),
   * and the caller's terminal would reach in with its hang-up. */
  if (setsid () < 0 && getsid (0) != getpid ())
    {
      ocirun_make_error (&err, errno, "setsid");
      child_fail (ch, &err, 1);
    }
  if (s->console_slave_fd >= 0)
    {
      if (ocirun_setup_console_stdio (s->console_slave_fd, &err) < 0)
        child_fail (ch, &err, 1);
      if (s->console_slave_fd > 2)
        close (s->console_slave_fd);
      s->console_slave_fd = -1;
    }

  {
    int keep[] = { ch->sock, s->fifo_fd, s->done_fd };
    if (seal_fds (c->preserve_fds, keep, 3, &err) < 0)
      child_fail (ch, &err, 1);
    c->rootfs_fd = -1;
  }

  ocirun_process_exec (cfg, cfg->process, true, &eh, &err);
  /* Only failures come back. Missing or non-executable commands get the
   * shell's exit codes, which engines (docker: 127/126) rely on. */
  child_fail (ch, &err, err && err->status == ENOENT ? 127 : err && err->status == EACCES ? 126 : 1);
}

static pid_t
raw_clone (uint64_t flags, int cgroup_fd)
{
  /* With CLONE_PARENT the kernel takes the exit signal from the caller and
   * refuses any other value. */
  struct ocirun_clone_args args = { .flags = flags, .exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD };
  long r;

  if (cgroup_fd >= 0)
    {
      args.flags |= CLONE_INTO_CGROUP;
      args.cgroup = cgroup_fd;
    }
  r = syscall (SYS_clone3, &args, sizeof args);
  if (r >= 0 || (errno != ENOSYS && errno != E2BIG))
    return r;
  /* No clone3 (kernels before 5.3): clone with a NULL stack behaves like
   * fork; the caller moves the child into its cgroup instead. */
  if (cgroup_fd >= 0)
    {
      errno = ENOSYS;
      return -1;
    }
  return syscall (SYS_clone, (unsigned long)(flags | ((flags & CLONE_PARENT) ? 0 : SIGCHLD)), NULL, NULL, NULL, NULL);
}

/* The intermediate child for the join-by-path case. Returns only in the
 * init (the grandchild, or itself when no fork is needed). */
static void
intermediate_main (struct child *ch)
{
  cleanup_error ocirun_error_t err = NULL;
  struct ocirun_spawn *s = ch->s;
  struct ocirun_ns_plan *plan = s->plan;
  bool new_time = plan->new_flags & CLONE_NEWTIME;
  pid_t init;

  prctl (PR_SET_PDEATHSIG, SIGKILL);

  if (ocirun_ns_join (plan, 0, &err) < 0)
    child_fail (ch, &err, 1);
  if ((plan->new_flags & ~CLONE_NEWCGROUP) && unshare (plan->new_flags & ~CLONE_NEWCGROUP) < 0)
    {
      ocirun_make_error (&err, errno, "unshare namespaces");
      child_fail (ch, &err, 1);
    }
  if (plan->new_flags & CLONE_NEWUSER)
    {
      if (sync_send (ch->sock, SYNC_MAPS, 0, NULL, -1) < 0)
        {
          ocirun_make_error (&err, errno, "ask for uid/gid maps");
          child_fail (ch, &err, 1);
        }
      if (child_expect (ch, SYNC_MAPS_DONE, NULL, &err) < 0)
        child_fail (ch, &err, 1);
    }
  if (new_time && ocirun_ns_write_time_offsets (s->c->config->linux, &err) < 0)
    child_fail (ch, &err, 1);

  /* A new or joined pid/time namespace only applies to children. Without
   * one, this process is the init: value 0 tells the parent so. */
  if (!((plan->new_flags | plan->join_flags) & (CLONE_NEWPID | CLONE_NEWTIME)))
    {
      if (sync_send (ch->sock, SYNC_PID, 0, NULL, -1) < 0)
        _exit (1);
      return;
    }

  init = raw_clone (CLONE_PARENT, -1);
  if (init < 0)
    {
      ocirun_make_error (&err, errno, "fork the container init");
      child_fail (ch, &err, 1);
    }
  if (init == 0)
    return;
  sync_send (ch->sock, SYNC_PID, init, NULL, -1);
  _exit (0);
}

/* ------------------------------------------------------------------------ */
/* The parent side. */

static int
parent_run_hooks (struct ocirun_spawn *s, ocirun_error_t *err)
{
  const oci_hooks *h = s->c->config->hooks;
  cleanup_free char *state = ocirun_hook_state_json (s->c, "creating", s->pid);
  int ret;

  /* prestart is deprecated but still run, right before createRuntime. */
  ret = ocirun_run_hooks (h->prestart, h->prestart_len, "prestart", state, s->c->log, err);
  if (ret < 0)
    return ret;
  return ocirun_run_hooks (h->create_runtime, h->create_runtime_len, "createRuntime", state, s->c->log, err);
}

static int
forward_seccomp_listener (struct ocirun_spawn *s, int fd, ocirun_error_t *err)
{
  cleanup_close int lfd = fd;
  const oci_seccomp *sc = s->c->config->linux ? s->c->config->linux->seccomp : NULL;
  cleanup_free char *state = NULL;
  cleanup_close int sock = -1;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };

  if (sc == NULL || sc->listener_path == NULL)
    return ocirun_make_error (err, -EINVAL, "seccomp listener received but linux.seccomp.listenerPath is not set");
  if (strlen (sc->listener_path) >= sizeof addr.sun_path)
    return ocirun_make_error (err, ENAMETOOLONG, "linux.seccomp.listenerPath `%s`", sc->listener_path);
  strcpy (addr.sun_path, sc->listener_path);

  sock = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0)
    return ocirun_make_error (err, errno, "socket");
  if (connect (sock, (struct sockaddr *)&addr, sizeof addr) < 0)
    return ocirun_make_error (err, errno, "connect to seccomp listener `%s`", sc->listener_path);

  /* The spec's container process state: the state plus fds and metadata. */
  {
    char *fds[] = { (char *)"seccompFd", NULL };
    oci_state st = { .oci_version = (char *)OCI_SPEC_VERSION,
                     .id = (char *)s->c->id,
                     .status = (char *)"creating",
                     .pid = s->pid,
                     .has_pid = true,
                     .bundle = (char *)s->c->bundle,
                     .annotations = s->c->config->annotations };
    oci_container_process_state cps = { .oci_version = (char *)OCI_SPEC_VERSION,
                                        .fds = fds,
                                        .fds_len = 1,
                                        .has_fds = true,
                                        .pid = s->pid,
                                        .has_pid = true,
                                        .metadata = sc->listener_metadata,
                                        .state = &st };
    state = oci_container_process_state_to_json (&cps, 0, NULL);
  }
  if (send_with_fd (sock, state, strlen (state), lfd) < 0)
    return ocirun_make_error (err, errno, "send the seccomp listener to `%s`", sc->listener_path);
  return 0;
}

/* Idmapped bind mounts of a user-namespaced container: made here, with the
 * host's rights over the source filesystems, attached by the init. */
static int
send_idmap_trees (struct ocirun_spawn *s, int sock, pid_t pid, ocirun_error_t *err)
{
  const oci_config *cfg = s->c->config;
  cleanup_close int userns = -1;
  char path[64];

  if (!s->c->userns)
    return 0;
  for (size_t i = 0; i < cfg->mounts_len; i++)
    {
      cleanup_close int tree = -1;
      if (!ocirun_mount_is_idmap (cfg->mounts[i]))
        continue;
      if (userns < 0)
        {
          snprintf (path, sizeof path, "/proc/%d/ns/user", pid);
          userns = open (path, O_RDONLY | O_CLOEXEC);
          if (userns < 0)
            return ocirun_make_error (err, errno, "open `%s`", path);
        }
      tree = ocirun_idmap_tree (s->c, cfg->mounts[i], userns, err);
      if (tree < 0)
        return tree;
      if (sync_send (sock, SYNC_IDMAP, (int)i, NULL, tree) < 0)
        return ocirun_make_error (err, errno, "send an idmapped mount to the container init");
    }
  return 0;
}

static int
kill_and_reap (pid_t pid)
{
  int st;
  if (pid <= 0)
    return 0;
  kill (pid, SIGKILL);
  return TEMP_FAILURE_RETRY_INT (waitpid (pid, &st, 0));
}

static int
describe_death (pid_t pid, ocirun_error_t *err)
{
  int st = 0;
  if (TEMP_FAILURE_RETRY_INT (waitpid (pid, &st, 0)) < 0)
    return ocirun_make_error (err, -EPIPE, "container init exited unexpectedly");
  if (WIFSIGNALED (st))
    return ocirun_make_error (err, -EPIPE, "container init was killed by signal %d during setup", WTERMSIG (st));
  return ocirun_make_error (err, -EPIPE, "container init exited with status %d during setup", WEXITSTATUS (st));
}

int
ocirun_spawn_init (struct ocirun_spawn *s, ocirun_error_t *err)
{
  struct ocirun_container *c = s->c;
  struct ocirun_ns_plan *plan = s->plan;
  const oci_linux *lx = c->config->linux;
  bool fast
      = plan->n_join == 0 && !((plan->new_flags & CLONE_NEWTIME) && lx && lx->time_offsets && lx->time_offsets->len);
  int cgroup_fd = (fast && s->cg) ? ocirun_cgroup_unified_fd (s->cg) : -1;
  int sv[2];
  pid_t pid, intermediate = -1;
  struct child ch = { .s = s, .parent_waiting = true };
  struct sync_msg m;
  int ret, r;

  if (lx && lx->seccomp && (ret = ocirun_seccomp_prepare (err)) < 0)
    return ret;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return ocirun_make_error (err, errno, "socketpair");

  /* A cgroup namespace takes the cgroup the process is in when it is made
   * as its root: the init unshares it once it has placed itself in every
   * hierarchy (see cgroup/enter.c for why the child moves itself). */
  pid = raw_clone (fast ? (plan->new_flags & ~CLONE_NEWCGROUP) : 0, cgroup_fd);
  if (pid < 0 && cgroup_fd >= 0)
    {
      cgroup_fd = -1;
      pid = raw_clone (fast ? (plan->new_flags & ~CLONE_NEWCGROUP) : 0, -1);
    }
  if (pid < 0)
    {
      ret = ocirun_make_error (err, errno, "clone the container init");
      close (sv[0]);
      close (sv[1]);
      return ret;
    }
  if (pid == 0)
    {
      close (sv[0]);
      s->cgroupns_pending = plan->new_flags & CLONE_NEWCGROUP;
      s->placed_unified = cgroup_fd >= 0;
      if (s->state_dirfd >= 0)
        close (s->state_dirfd);
      ch.sock = sv[1];
      if (!fast)
        intermediate_main (&ch);
      init_main (&ch);
    }
  close (sv[1]);

  if (!fast)
    {
      intermediate = pid;
      pid = -1;
      for (;;)
        {
          r = sync_recv (sv[0], &m, NULL);
          if (r == SYNC_MAPS)
            {
              ret = ocirun_ns_write_id_maps (intermediate, lx, geteuid () != 0, err);
              if (ret < 0)
                goto fail;
              sync_send (sv[0], SYNC_MAPS_DONE, 0, NULL, -1);
              continue;
            }
          if (r == SYNC_PID)
            {
              int st;
              if (m.value == 0)
                pid = intermediate;
              else
                {
                  pid = m.value;
                  TEMP_FAILURE_RETRY_INT (waitpid (intermediate, &st, 0));
                }
              intermediate = -1;
              break;
            }
          if (r == SYNC_ERROR)
            {
              ret = ocirun_make_error (err, -m.value, "%s", m.text);
              goto fail;
            }
          if (r < 0 || r == 0)
            {
              ret = r == 0 ? describe_death (intermediate, err)
                           : ocirun_make_error (err, -r, "read from the container init");
              intermediate = -1;
              goto fail;
            }
          ret = ocirun_make_error (err, -EPROTO, "unexpected message %d from the container init", r);
          goto fail;
        }
    }
  s->pid = pid;

  if (fast && (plan->new_flags & CLONE_NEWUSER))
    {
      ret = ocirun_ns_write_id_maps (pid, lx, geteuid () != 0, err);
      if (ret < 0)
        goto fail;
    }
  ret = ocirun_netdev_move_in (lx, pid, err);
  if (ret < 0)
    goto fail;
  ret = ocirun_intelrdt_apply (lx, c->id, pid, &s->intelrdt_group, err);
  if (ret < 0)
    goto fail;
  ret = send_idmap_trees (s, sv[0], pid, err);
  if (ret < 0)
    goto fail;
  ret = ocirun_cgroup_attach (s->cg, pid, err);
  if (ret < 0)
    goto fail;
  if (sync_send (sv[0], SYNC_GO, pid, NULL, -1) < 0)
    {
      ret = ocirun_make_error (err, errno, "start the container init");
      goto fail;
    }

  for (;;)
    {
      int rfd = -1;
      r = sync_recv (sv[0], &m, &rfd);
      switch (r)
        {
        case SYNC_HOOKS:
          ret = parent_run_hooks (s, err);
          if (ret < 0)
            goto fail;
          sync_send (sv[0], SYNC_HOOKS_DONE, 0, NULL, -1);
          break;
        case SYNC_SECCOMP_FD:
          if (rfd < 0)
            {
              ret = ocirun_make_error (err, -EPROTO, "seccomp listener message without a descriptor");
              goto fail;
            }
          ret = forward_seccomp_listener (s, rfd, err);
          if (ret < 0)
            goto fail;
          sync_send (sv[0], SYNC_SECCOMP_DONE, 0, NULL, -1);
          break;
        case SYNC_CONSOLE:
          if (rfd < 0)
            {
              ret = ocirun_make_error (err, -EPROTO, "console message without a descriptor");
              goto fail;
            }
          if (s->console_master >= 0)
            close (s->console_master);
          s->console_master = rfd;
          break;
        case SYNC_READY:
          close (sv[0]);
          return 0;
        case SYNC_ERROR:
          ret = ocirun_make_error (err, -m.value, "%s", m.text);
          goto fail;
        case 0:
          ret = describe_death (pid, err);
          pid = -1;
          s->pid = 0;
          goto fail;
        default:
          if (rfd >= 0)
            close (rfd);
          ret = r < 0 ? ocirun_make_error (err, -r, "read from the container init")
                      : ocirun_make_error (err, -EPROTO, "unexpected message %d from the container init", r);
          goto fail;
        }
    }

fail:
  close (sv[0]);
  if (s->console_master >= 0)
    {
      close (s->console_master);
      s->console_master = -1;
    }
  kill_and_reap (intermediate);
  kill_and_reap (pid);
  s->pid = 0;
  if (s->intelrdt_group)
    {
      cleanup_error ocirun_error_t e = NULL;
      ocirun_intelrdt_remove (s->intelrdt_group, &e);
      free (s->intelrdt_group);
      s->intelrdt_group = NULL;
    }
  return ret;
}

/* ------------------------------------------------------------------------ */
/* exec: join a running container. A first child (moved into the cgroup)
 * joins the init's namespaces through its pidfd in one setns() call; since a
 * pid namespace only applies to children, it forks the final process with
 * CLONE_PARENT, so that process is the caller's child too. */

struct exec_child
{
  struct ocirun_exec_spawn *e;
  int sock;
};

static void __attribute__ ((noreturn)) exec_child_fail (int sock, ocirun_error_t *err, int code)
{
  sync_send (sock, SYNC_ERROR, (err && *err) ? (*err)->status : 0, (err && *err) ? (*err)->msg : "unknown error", -1);
  _exit (code);
}

static void __attribute__ ((noreturn)) exec_final (struct ocirun_exec_spawn *e, int sock)
{
  cleanup_error ocirun_error_t err = NULL;
  sigset_t none;

  /* No parent-death signal here: it would survive execve and kill a
   * detached exec when the runtime exits (the joiner has one instead). */
  if (e->userns)
    prctl (PR_SET_DUMPABLE, 1);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal (sig, SIG_DFL);

  if (e->want_console)
    {
      int slave = -1;
      if (open_console (sock, -1, e->process->console_size, &slave, &err) < 0)
        exec_child_fail (sock, &err, 1);
      if (ocirun_setup_console_stdio (slave, &err) < 0)
        exec_child_fail (sock, &err, 1);
      if (slave > 2)
        close (slave);
    }
  {
    int keep[] = { sock };
    if (seal_fds (e->preserve_fds, keep, 1, &err) < 0)
      exec_child_fail (sock, &err, 1);
  }
  /* The socket is close-on-exec: EOF without an error tells the parent the
   * execve succeeded. */
  ocirun_process_exec (e->config, e->process, false, NULL, &err);
  exec_child_fail (sock, &err, err && err->status == ENOENT ? 127 : err && err->status == EACCES ? 126 : 1);
}

/* One setns() on the init's pidfd (Linux 5.8) joins every namespace at
 * once. Older kernels refuse a pidfd there (EINVAL) or have none: join the
 * /proc/PID/ns files one by one, user namespace first, once the init is
 * known to still be the process they were opened from. */
static int
join_init_namespaces (struct ocirun_exec_spawn *e, ocirun_error_t *err)
{
  struct ocirun_ns_plan plan;
  int ret;

  if (e->init.fd >= 0)
    {
      if (setns (e->init.fd, e->ns_flags) == 0)
        return 0;
      if (errno != EINVAL)
        return ocirun_make_error (err, errno, "join the namespaces of the container");
    }
  ret = ocirun_ns_plan_from_pid (e->init.pid, e->ns_flags, &plan, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "join the namespaces of the container");
  if (!ocirun_pidref_alive (&e->init))
    ret = ocirun_make_error (err, -ESRCH, "join the namespaces of the container: its init is gone");
  else
    ret = ocirun_ns_join (&plan, 0, err);
  ocirun_ns_plan_close (&plan);
  return ret;
}

static void __attribute__ ((noreturn)) exec_joiner (struct ocirun_exec_spawn *e, int sock)
{
  cleanup_error ocirun_error_t err = NULL;
  struct sync_msg m;
  pid_t pid;

  /* Until execve this process is a copy of the runtime: keep container
   * processes from reading its memory or reaching /proc/PID/exe. */
  prctl (PR_SET_DUMPABLE, 0);
  prctl (PR_SET_PDEATHSIG, SIGKILL);

  if (sync_recv (sock, &m, NULL) != SYNC_GO)
    _exit (1);
  if (ocirun_cgroup_enter_self (e->cg, e->placed_unified, &err) < 0)
    exec_child_fail (sock, &err, 1);
  if (join_init_namespaces (e, &err) < 0)
    exec_child_fail (sock, &err, 1);
  if (e->userns && become_container_root (&err) < 0)
    exec_child_fail (sock, &err, 1);
  /* Joining the mount namespace puts us at its root mount, which is the
   * container's root only when the runtime pivoted from the namespace root.
   * Under --no-pivot, or when the runtime itself runs chroot'ed, that is the
   * host's filesystem: take the init's own root instead. */
  if (e->init_root >= 0 && (fchdir (e->init_root) < 0 || chroot (".") < 0 || chdir ("/") < 0))
    {
      ocirun_make_error (&err, errno, "enter the container's root directory");
      exec_child_fail (sock, &err, 1);
    }

  pid = raw_clone (CLONE_PARENT, -1);
  if (pid < 0)
    {
      ocirun_make_error (&err, errno, "fork into the container");
      exec_child_fail (sock, &err, 1);
    }
  if (pid == 0)
    exec_final (e, sock);
  sync_send (sock, SYNC_PID, pid, NULL, -1);
  _exit (0);
}

int
ocirun_spawn_exec (struct ocirun_exec_spawn *e, ocirun_error_t *err)
{
  int cgroup_fd = e->cg ? ocirun_cgroup_unified_fd (e->cg) : -1;
  pid_t joiner;
  struct sync_msg m;
  int sv[2], r, ret, st;

  e->pid = -1;
  if (e->config->linux && e->config->linux->seccomp && (ret = ocirun_seccomp_prepare (err)) < 0)
    return ret;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return ocirun_make_error (err, errno, "socketpair");

  joiner = raw_clone (0, cgroup_fd);
  if (joiner < 0 && cgroup_fd >= 0)
    {
      cgroup_fd = -1;
      joiner = raw_clone (0, -1);
    }
  if (joiner < 0)
    {
      ret = ocirun_make_error (err, errno, "fork");
      close (sv[0]);
      close (sv[1]);
      return ret;
    }
  if (joiner == 0)
    {
      close (sv[0]);
      e->placed_unified = cgroup_fd >= 0;
      exec_joiner (e, sv[1]);
    }
  close (sv[1]);
  ret = ocirun_cgroup_attach (e->cg, joiner, err);
  if (ret < 0)
    goto fail;
  if (sync_send (sv[0], SYNC_GO, 0, NULL, -1) < 0)
    {
      ret = ocirun_make_error (err, errno, "start the exec process");
      goto fail;
    }

  /* The joiner says SYNC_PID and exits; the process itself may send its
   * console before or after that, then execs (which closes its end). So:
   * messages in any order until EOF (success) or an error. */
  for (;;)
    {
      int rfd = -1;
      r = sync_recv (sv[0], &m, &rfd);
      if (r == SYNC_CONSOLE && rfd >= 0)
        {
          if (e->console_master >= 0)
            close (e->console_master);
          e->console_master = rfd;
          continue;
        }
      if (rfd >= 0)
        close (rfd);
      if (r == SYNC_PID && e->pid < 0)
        {
          e->pid = m.value;
          continue;
        }
      break;
    }
  TEMP_FAILURE_RETRY_INT (waitpid (joiner, &st, 0));
  joiner = -1;
  if (r == 0 && e->pid > 0)
    {
      close (sv[0]);
      return 0; /* execve closed the socket */
    }
  if (r == SYNC_ERROR)
    ret = ocirun_make_error (err, -m.value, "%s", m.text);
  else if (e->pid < 0)
    ret = ocirun_make_error (err, -EPIPE, "the exec process died while joining the container (%s %d)",
                             WIFSIGNALED (st) ? "signal" : "exit status",
                             WIFSIGNALED (st) ? WTERMSIG (st) : WEXITSTATUS (st));
  else
    ret = ocirun_make_error (err, -EPROTO, "unexpected message %d from the exec process", r);

fail:
  close (sv[0]);
  if (e->console_master >= 0)
    {
      close (e->console_master);
      e->console_master = -1;
    }
  kill_and_reap (joiner);
  kill_and_reap (e->pid);
  e->pid = -1;
  return ret;
}
