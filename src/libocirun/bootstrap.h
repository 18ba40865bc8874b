/* Starting a container's init: clone3 into the new namespaces (or an
 * intermediate process when namespaces are joined by path), the
 * parent<->child protocol over a SOCK_SEQPACKET pair, and the child's side of
 * the setup up to execve. */
#ifndef OCIRUN_BOOTSTRAP_H
#define OCIRUN_BOOTSTRAP_H

#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "error.h"
#include "pidref.h"
#include "namespaces.h"
#include "setup.h"

struct ocirun_spawn
{
  struct ocirun_container *c;
  struct ocirun_ns_plan *plan;
  struct ocirun_cgroup *cg; /* may be NULL (rootless without cgroups) */
  int fifo_fd;              /* O_RDWR|O_CLOEXEC on exec.fifo: the init blocks reading it */
  int done_fd;              /* O_RDWR|O_CLOEXEC on exec.done (poststart hooks), or -1 */
  int console_slave_fd;     /* set by the child: its pty slave, or -1 */
  bool want_console;        /* process.terminal: the init opens a pty in the container's devpts */
  int console_master;       /* out: the pty master the init sent back, or -1 */
  bool cgroupns_pending;    /* child side: unshare CLONE_NEWCGROUP once placed in the cgroup */
  bool placed_unified;      /* child side: clone3 put it in the cgroup2 directory already */
  int state_dirfd;          /* the locked state dir: the child closes its copy at once, or the
                               flock would outlive create and block start */
  /* Parent side: the init's host pid once known (for the hooks' state). */
  pid_t pid;
  char *intelrdt_group; /* out: a resctrl group this create made, to remove on delete */
};

/* Starts the init and drives it until it waits for `start` (or fails).
 * On success the init is the caller's child, s->pid is set, and the only
 * thing left for the init is to read one byte from the fifo. On failure the
 * init (if any) is killed and reaped. */
int ocirun_spawn_init (struct ocirun_spawn *s, ocirun_error_t *err);

/* A process joining a running container (`exec`). */
struct ocirun_exec_spawn
{
  const oci_config *config;   /* the container's config (linux.* settings) */
  const oci_process *process; /* what to run */
  struct ocirun_pidref init;  /* the container's init (borrowed) */
  int init_root;              /* O_PATH fd on /proc/PID/root of the init (its root directory) */
  int ns_flags;               /* CLONE_NEW* of the init to join */
  bool userns;                /* ns_flags has a user namespace */
  struct ocirun_cgroup *cg;   /* the container's cgroup, or NULL */
  bool want_console;          /* open a pty in the container's /dev/ptmx */
  int console_master;         /* out: its master, or -1 */
  int console_slave_fd;       /* child-side only */
  int preserve_fds;
  bool placed_unified; /* child side: clone3 put it in the cgroup2 directory already */
  struct ocirun_logger *log;
  pid_t pid; /* out: the process, a child of the caller */
};

/* Starts the process; returns once it has execve()d (or failed before). */
int ocirun_spawn_exec (struct ocirun_exec_spawn *e, ocirun_error_t *err);

#endif
