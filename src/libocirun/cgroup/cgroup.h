/* One interface over every cgroup setup a host can have: v1 (one hierarchy
 * per controller, named hierarchies too), v2 (one unified tree), hybrid (v1
 * controllers plus an empty cgroup2 tree at /sys/fs/cgroup/unified), driven
 * through cgroupfs or systemd. container.c only talks to this header. */
#ifndef OCIRUN_CGROUP_H
#define OCIRUN_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../error.h"
#include "../log.h"
#include "ocispec.h"

enum ocirun_cgroup_mode
{
  OCIRUN_CGROUP_V1 = 1,
  OCIRUN_CGROUP_V2,
  OCIRUN_CGROUP_HYBRID,
};

/* Detected once per call from /sys/fs/cgroup (statfs), no global cache. */
int ocirun_cgroup_mode (ocirun_error_t *err);

struct ocirun_cgroup_request
{
  const char *id;
  const char *cgroups_path;       /* linux.cgroupsPath, may be NULL/empty */
  const oci_resources *resources; /* may be NULL */
  /* linux.devices: like runc, a default device rule (/dev/null, ...) is not
   * added when the spec creates a device at the same path. May be NULL. */
  oci_device *const *linux_devices;
  size_t linux_devices_len;
  bool systemd; /* --systemd-cgroup */
  bool rootless;
  struct ocirun_logger *log;
};

struct ocirun_cgroup; /* opaque */

/* Creates (or joins) the container's cgroup(s) and applies resources.
 * *out is NULL (and 0 returned) when rootless with no delegation: the
 * container then runs without cgroups, logged at debug level. */
int ocirun_cgroup_create (const struct ocirun_cgroup_request *req, struct ocirun_cgroup **out, ocirun_error_t *err);

/* A directory fd for clone3 CLONE_INTO_CGROUP (v2 only), or -1. Owned by cg. */
int ocirun_cgroup_clone_fd (struct ocirun_cgroup *cg);

/* The cgroup2 directory fd (pure v2, or the unified tree of a hybrid host)
 * for clone3 CLONE_INTO_CGROUP, or -1. Owned by cg. */
int ocirun_cgroup_unified_fd (struct ocirun_cgroup *cg);

/* Moves the calling single-threaded process into every hierarchy (v1 through
 * `tasks`, which avoids the global migration lock), except the unified one
 * when skip_unified (clone3 already put it there). Runs in the child, on the
 * directory fds it inherited. */
int ocirun_cgroup_enter_self (struct ocirun_cgroup *cg, bool skip_unified, ocirun_error_t *err);

/* The directory whose freezer says whether the container is paused (v1
 * freezer hierarchy, or the cgroup2 directory), stored at create so that
 * `state` and `list` need not load the whole cgroup; and the check itself
 * from that path alone. */
const char *ocirun_cgroup_freezer_dir (struct ocirun_cgroup *cg);
int ocirun_cgroup_dir_is_frozen (const char *dir, bool *frozen, ocirun_error_t *err);

/* Called by the parent for a new container or exec process, before the
 * child places itself (ocirun_cgroup_enter_self): a driver that must move
 * it in from outside does so here (the systemd driver for a rootless
 * container: the user manager moves it). 0 and nothing done otherwise. */
int ocirun_cgroup_attach (struct ocirun_cgroup *cg, pid_t pid, ocirun_error_t *err);

/* Moves pid into every hierarchy of the cgroup. */
int ocirun_cgroup_enter (struct ocirun_cgroup *cg, pid_t pid, ocirun_error_t *err);

/* The string stored in the state dir to find the cgroup again (a path
 * relative to the hierarchy roots, e.g. "/ocirun/ID"), and the manager name
 * ("cgroupfs" or "systemd"). Owned by cg. */
const char *ocirun_cgroup_path (struct ocirun_cgroup *cg);
const char *ocirun_cgroup_manager (struct ocirun_cgroup *cg);

/* Finds a container's cgroup again from what ocirun_cgroup_path returned. */
int ocirun_cgroup_load (const char *path, const char *manager, struct ocirun_logger *log, struct ocirun_cgroup **out,
                        ocirun_error_t *err);

/* Every pid in the cgroup (all hierarchies agree; v2 or the pids/first v1
 * hierarchy is read). */
int ocirun_cgroup_pids (struct ocirun_cgroup *cg, pid_t **pids, size_t *len, ocirun_error_t *err);

/* Sends signo to every process in the cgroup (cgroup.kill for SIGKILL on v2
 * when available). */
int ocirun_cgroup_kill (struct ocirun_cgroup *cg, int signo, ocirun_error_t *err);

/* Freezes/thaws (v1 freezer, v2 cgroup.freeze) and reports the state. */
int ocirun_cgroup_freeze (struct ocirun_cgroup *cg, bool frozen, ocirun_error_t *err);
int ocirun_cgroup_is_frozen (struct ocirun_cgroup *cg, bool *frozen, ocirun_error_t *err);

/* Applies resources to an existing cgroup (`update`); linux_devices: the
 * container's linux.devices, whose paths replace runc's default device
 * rules as at creation. */
int ocirun_cgroup_update (struct ocirun_cgroup *cg, const oci_resources *resources, oci_device *const *linux_devices,
                          size_t linux_devices_len, ocirun_error_t *err);

/* Usage statistics as one line of runc's `events` JSON:
 * {"type":"stats","id":ID,"data":{...}} (runc's types.Stats shape). */
int ocirun_cgroup_stats_json (struct ocirun_cgroup *cg, const char *id, char **out, ocirun_error_t *err);

/* OOM notifications: v1 memory.oom_control through an eventfd, v2 the
 * oom_kill counter of memory.events through inotify. *out is NULL (0
 * returned) when there is no memory controller. Poll ocirun_cgroup_oom_fd
 * for POLLIN, then ocirun_cgroup_oom_read says how many OOMs happened. The
 * handle refers to cg, which must outlive it. */
struct ocirun_cgroup_oom;
int ocirun_cgroup_oom_open (struct ocirun_cgroup *cg, struct ocirun_cgroup_oom **out, ocirun_error_t *err);
int ocirun_cgroup_oom_fd (struct ocirun_cgroup_oom *o);
int ocirun_cgroup_oom_read (struct ocirun_cgroup_oom *o, unsigned *count);
void ocirun_cgroup_oom_close (struct ocirun_cgroup_oom *o);

/* `exec --cgroup`: a new handle for sub-cgroups of the container's cgroup,
 * to pass where the container's one would go. Each spec is "PATH" (every
 * hierarchy; the only form on v2) or "CONTROLLER[,CONTROLLER...]:PATH" (v1:
 * the hierarchies of those controllers); PATH is relative to the
 * container's cgroup and must exist. Hierarchies not named stay at the
 * container's cgroup. */
int ocirun_cgroup_sub (struct ocirun_cgroup *cg, char *const *specs, size_t n, struct ocirun_cgroup **out,
                       ocirun_error_t *err);

/* Removes the cgroup directories (after every process is gone; waits briefly
 * for the kernel to release them). */
int ocirun_cgroup_destroy (struct ocirun_cgroup *cg, ocirun_error_t *err);

void ocirun_cgroup_free (struct ocirun_cgroup *cg);
static inline void
ocirun_cgroup_freep (struct ocirun_cgroup **cg)
{
  ocirun_cgroup_free (*cg);
}
#define cleanup_cgroup __attribute__ ((cleanup (ocirun_cgroup_freep)))

#endif
