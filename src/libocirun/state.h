/* The state directory: ROOT/ID holds status.json (oci_container_status) and
 * exec.fifo (present between create and start); a flock() on the directory
 * itself is the container's lock. Writes are atomic (temp + rename); every
 * command that changes a container holds the lock, so concurrent commands
 * never tear it. */
#ifndef OCIRUN_STATE_H
#define OCIRUN_STATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "ocispec.h"

struct stat;

enum ocirun_status
{
  OCIRUN_STATUS_CREATING = 0,
  OCIRUN_STATUS_CREATED,
  OCIRUN_STATUS_RUNNING,
  OCIRUN_STATUS_PAUSED,
  OCIRUN_STATUS_STOPPED,
};
const char *ocirun_status_name (enum ocirun_status s);

/* Creates ROOT (0700) if needed, then ROOT/ID exclusively: EEXIST becomes
 * "container `ID` already exists". Returns an O_DIRECTORY fd on ROOT/ID,
 * locked exclusively.
 * The lock is a flock() on the directory fd itself: it lasts while any copy
 * of that open file description exists, so a forked child that lives on
 * (the container init) must close it even though it is O_CLOEXEC. The
 * creator must keep it until status.json is written: a directory without
 * status.json whose lock is free is taken for a dead create and removed. */
int ocirun_state_reserve (const char *root, const char *id, ocirun_error_t *err);

/* Opens ROOT/ID (ENOENT becomes "container `ID` does not exist") and takes
 * its lock (exclusive or shared). Returns the directory fd. A directory left
 * by a create that died before writing status.json also fails with -ENOENT
 * (and is removed when `exclusive`). */
int ocirun_state_open (const char *root, const char *id, bool exclusive, ocirun_error_t *err);
/* The same with the state root already open (list: one open for all);
 * *sb receives the directory's stat (its owner is the container's). */
int ocirun_state_open_at (int rootfd, const char *id, bool exclusive, struct stat *sb, ocirun_error_t *err);

int ocirun_state_write (int dirfd, const oci_container_status *st, ocirun_error_t *err);
int ocirun_state_read (int dirfd, oci_container_status **st, ocirun_error_t *err);

/* Removes ROOT/ID and everything in it (by fd, no path walks); -ENOENT when
 * it does not exist. Takes no lock: the caller holds it. */
int ocirun_state_remove (const char *root, const char *id, ocirun_error_t *err);

/* The start time of pid (field 22 of /proc/PID/stat), 0 when it is gone. */
uint64_t ocirun_pid_start_time (pid_t pid);
/* pid is the process that started at start_time, and has not exited (a
 * zombie has). */
bool ocirun_pid_alive (pid_t pid, uint64_t start_time);

/* Status from the live process: stopped when the pid is gone or its start
 * time differs (pid reuse), created while exec.fifo exists, paused when the
 * cgroup is frozen (is_frozen given by the caller), else running. */
enum ocirun_status ocirun_state_status (int dirfd, const oci_container_status *st, bool frozen);

/* RFC 3339 with nanoseconds in UTC, as runc prints `created`. */
char *ocirun_now_rfc3339 (void);
/* The same format for a given time (Go's time.RFC3339Nano: trailing zeros
 * of the fraction trimmed). */
struct timespec;
char *ocirun_format_rfc3339 (const struct timespec *ts);

#endif
