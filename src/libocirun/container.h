/* Helpers container.c shares with bootstrap.c. */
#ifndef OCIRUN_CONTAINER_H
#define OCIRUN_CONTAINER_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "ocirun.h"
#include "setup.h"
#include "state.h"

/* The runtime-spec state document for hooks' stdin. Caller frees. */
char *ocirun_hook_state_json (const struct ocirun_container *c, const char *status, pid_t pid);

/* Parses a config (from data, or from path when data is NULL) and turns the
 * first problem into an error naming the file and JSON path. */
int ocirun_parse_config (const char *path, const char *data, size_t len, oci_config **out, ocirun_error_t *err);

/* An existing container, as its state directory describes it. */
struct ocirun_loaded
{
  int dirfd;
  oci_container_status *st;
  oci_config *config; /* only when loaded with want_config */
  struct ocirun_cgroup *cg;
  enum ocirun_status status;
  uid_t owner; /* of the state directory */
};
int ocirun_load_container (struct ocirun_context *ctx, bool exclusive, bool want_config, struct ocirun_loaded *l,
                           ocirun_error_t *err);
void ocirun_loaded_free (struct ocirun_loaded *l);
#define cleanup_loaded __attribute__ ((cleanup (ocirun_loaded_free)))

/* Reads and parses the bundle's config (ctx->bundle, default the current
 * directory; ctx->config_file, default config.json): *bundle is the
 * bundle's real path, *text the config as read (for the state's copy). */
int ocirun_read_bundle (struct ocirun_context *ctx, char **bundle, char **text, size_t *len, oci_config **cfg,
                        ocirun_error_t *err);

/* The container's cgroup from its config's linux section and ctx's driver. */
int ocirun_container_cgroup_create (struct ocirun_context *ctx, const oci_config *cfg, struct ocirun_cgroup **cg,
                                    ocirun_error_t *err);

/* status.json of a new container whose init is pid. */
oci_container_status *ocirun_new_status (struct ocirun_context *ctx, pid_t pid, const char *bundle, const char *rootfs,
                                         const oci_config *cfg, struct ocirun_cgroup *cg, bool detached);

/* The network namespace the config joins by path, or NULL. */
const char *ocirun_config_netns_path (const oci_config *cfg);

/* The bundle's root.path made absolute and resolved; it must be a directory. */
int ocirun_resolve_rootfs (const char *bundle, const oci_config *cfg, char **out, ocirun_error_t *err);

/* What delete does once the processes are gone: Intel RDT group, network
 * devices, cgroup, poststop hooks, state directory. */
int ocirun_destroy_container (struct ocirun_context *ctx, struct ocirun_loaded *l, ocirun_error_t *err);

/* Waits (up to ~10 s) for the process to be gone after SIGKILL, and reaps it
 * when it is our child. */
void ocirun_wait_gone (pid_t pid, uint64_t start_time);

/* Writes the pid file atomically, as runc does (no trailing newline). */
int ocirun_write_pid_file (const char *path, pid_t pid, ocirun_error_t *err);

/* The signals a foreground run or exec forwards to its process are blocked
 * before the process starts (ocirun_relay_begin), so that none that arrives
 * before the wait is lost or kills the runtime: the wait reads them from a
 * signalfd. */
struct ocirun_relay
{
  sigset_t old;
  bool blocked;
};
void ocirun_relay_begin (struct ocirun_relay *r);
/* Restores the signal mask (when blocked); for cleanup attributes too. */
void ocirun_relay_end (struct ocirun_relay *r);
#define cleanup_relay __attribute__ ((cleanup (ocirun_relay_end)))

/* Waits for pid (our child) while forwarding every signal we get to it, or
 * relaying the terminal when pty_master >= 0; *exit_status as a shell
 * reports it (128+signal when killed). relay: begun before pid started, or
 * NULL; it is ended here. */
int ocirun_wait_process (pid_t pid, int pty_master, struct ocirun_relay *relay, int *exit_status, ocirun_error_t *err);

#endif
