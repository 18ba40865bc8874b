/* What the rooms of the library share while one container (or one exec'd
 * process) is being set up. container.c and bootstrap.c fill it in and call
 * the rooms in the order runc uses; each room owns one job. */
#ifndef OCIRUN_SETUP_H
#define OCIRUN_SETUP_H

#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "log.h"
#include "ocispec.h"

struct ocirun_container
{
  const char *id;
  oci_config *config;
  const char *bundle;    /* absolute path of the bundle directory */
  const char *rootfs;    /* absolute host path of the rootfs (bundle-relative root.path resolved) */
  const char *state_dir; /* absolute path of ROOT/ID */
  struct ocirun_logger *log;

  bool no_pivot;
  bool no_new_keyring;
  bool rootless;
  bool userns; /* the container gets a new user namespace */
  int preserve_fds;

  /* Terminal: when process.terminal is set, the pty slave path on the host
   * (/dev/pts/N), bind-mounted on /dev/console by the rootfs room. */
  const char *console_slave;

  /* Filled by the rootfs room: an O_PATH fd on the rootfs that stays valid
   * across pivot_root, used for safe path resolution. -1 when unset. */
  int rootfs_fd;

  /* Idmapped mounts in a user namespace: the kernel only lets a process with
   * rights over the source filesystem create them, so the runtime makes the
   * detached trees on the host side and the init attaches them. One fd per
   * config mount (-1 for the others); NULL when there are none. */
  int *idmap_trees;
};

/* ---- rootfs.c / mounts.c / devices.c / path.c (in the container's mount ns) ---- */

/* Everything before createContainer hooks: propagation of `/`, the rootfs
 * bind mount, every config mount (in order), default and configured
 * devices, /dev links, /dev/console. Runs as (container) root in the new
 * mount namespace, before pivot_root. */
int ocirun_rootfs_prepare (struct ocirun_container *c, ocirun_error_t *err);

/* After createContainer hooks: pivot_root (or MS_MOVE + chroot with
 * no_pivot), maskedPaths, readonlyPaths, root.readonly, rootfsPropagation,
 * chdir("/"). */
int ocirun_rootfs_finalize (struct ocirun_container *c, ocirun_error_t *err);

/* Opens `path` (absolute, as seen in the container) below rootfs_fd without
 * ever leaving it: `..` and symlinks are resolved as if rootfs_fd were `/`
 * (openat2 RESOLVE_IN_ROOT, or an equivalent walk on older kernels). */
int ocirun_open_in_root (int rootfs_fd, const char *path, int flags, mode_t mode, ocirun_error_t *err);

/* Like mkdir -p inside the rootfs (same resolution rules); returns an O_PATH
 * fd on the final directory (or file, when `file` is true: creates an empty
 * regular file as the last component, for bind-mounting files on). */
int ocirun_mkdir_in_root (int rootfs_fd, const char *path, mode_t mode, bool file, ocirun_error_t *err);

/* ---- process.c / caps.c / seccomp.c (the process that will execve) ---- */

/* Callbacks the process room calls at the points of the exec sequence where
 * the caller has work of its own. Any may be NULL. */
struct ocirun_exec_hooks
{
  void *data;
  /* Blocks until `start` (container init only). */
  int (*wait_start) (void *data, ocirun_error_t *err);
  /* Runs startContainer hooks (after wait_start, before execve). */
  int (*start_container) (void *data, ocirun_error_t *err);
  /* Receives the seccomp notify listener fd when linux.seccomp.listenerPath
   * is set; takes ownership of the fd. */
  int (*seccomp_listener) (void *data, int fd, ocirun_error_t *err);
};

/* Applies every process setting in runc's order and execve()s process->args;
 * returns only on failure. Settings: rlimits, oomScoreAdj, scheduler,
 * ioPriority, personality, memoryPolicy, execCPUAffinity, no_new_privs,
 * apparmor/selinux labels, user (groups, gid, uid, umask), capabilities,
 * seccomp (before dropping caps without NNP, else as late as possible),
 * cwd (created when missing), env, PATH lookup of args[0].
 * `config` gives linux.* (seccomp, personality, memoryPolicy); `init` is
 * true for the container's init (false for exec). */
int ocirun_process_exec (const oci_config *config, const oci_process *process, bool init,
                         struct ocirun_exec_hooks *hooks, ocirun_error_t *err);

/* Container-wide settings made once by the init, in the new namespaces,
 * before the rootfs is finalized: hostname, domainname, sysctl. */
int ocirun_set_hostname_sysctl (const oci_config *config, ocirun_error_t *err);

/* ---- hooks.c ---- */

/* Runs one list of hooks in order with `state_json` on stdin; fails on the
 * first hook that exits non-zero, is killed, or runs past its timeout
 * (killed then). `phase` names the list in errors ("prestart"...). */
int ocirun_run_hooks (oci_hook **hooks, size_t n, const char *phase, const char *state_json, struct ocirun_logger *log,
                      ocirun_error_t *err);

/* ---- terminal.c ---- */

/* Opens a new pty pair; *master and *slave are CLOEXEC fds; *slave_path is the
 * slave's /dev/pts path. Sets the window size when size is non-NULL. */
int ocirun_pty_open (const oci_box *size, int *master, int *slave, char **slave_path, ocirun_error_t *err);
/* For a pty master opened from a devpts instance (the container's own
 * /dev/pts/ptmx): unlocks it, opens the slave through it, sets the size. */
int ocirun_pty_from_master (int master, const oci_box *size, int *slave, ocirun_error_t *err);
/* Sends fd over the unix socket at socket_path with SCM_RIGHTS (what
 * --console-socket expects). */
int ocirun_send_console (const char *socket_path, int master, ocirun_error_t *err);
/* Receives one fd sent with SCM_RIGHTS on sock (the other end of
 * ocirun_send_console); *name (when non-NULL) gets the data sent with it.
 * Returns the fd, CLOEXEC. */
int ocirun_recv_fd (int sock, char **name, ocirun_error_t *err);
/* Makes fd the controlling terminal and stdin/stdout/stderr of the caller. */
int ocirun_setup_console_stdio (int slave, ocirun_error_t *err);
/* Relays between the current stdin/stdout and master until the child exits;
 * forwards SIGWINCH sizes. Used by `run`/`exec` without a console socket.
 * forward: the caller blocked every signal (ocirun_relay_begin); those other
 * than SIGWINCH and SIGCHLD go to the child (its pidfd, else kill(child):
 * it is our child, so its pid cannot be reused before it is reaped). */
int ocirun_pty_relay (int master, pid_t child, int child_pidfd, bool forward, ocirun_error_t *err);

/* ---- process.c ---- */

/* Parses a CPU list as in execCPUAffinity ("0-3,7"); for .final, which the
 * caller applies after moving the process into the container's cgroup. */
int ocirun_parse_cpu_list (const char *s, cpu_set_t *set, ocirun_error_t *err);

#endif
