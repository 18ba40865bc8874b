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
