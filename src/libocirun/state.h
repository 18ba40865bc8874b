/* The state directory: ROOT/ID holds status.json (oci_container_status),
 * exec.fifo (present between create and start), and a lock file. Writes are
 * atomic (temp + rename); every command that changes a container holds the
 * lock, so concurrent commands never tear it. */
#ifndef OCIRUN_STATE_H
#define OCIRUN_STATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "ocispec.h"

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
 * locked exclusively. */
int ocirun_state_reserve (const char *root, const char *id, ocirun_error_t *err);

/* Opens ROOT/ID (ENOENT becomes "container `ID` does not exist") and takes
 * its lock (exclusive or shared). Returns the directory fd. */
int ocirun_state_open (const char *root, const char *id, bool exclusive, ocirun_error_t *err);

int ocirun_state_write (int dirfd, const oci_container_status *st, ocirun_error_t *err);
int ocirun_state_read (int dirfd, oci_container_status **st, ocirun_error_t *err);

/* Removes ROOT/ID and everything in it. */
int ocirun_state_remove (const char *root, const char *id, ocirun_error_t *err);

/* The start time of pid (field 22 of /proc/PID/stat), 0 when it is gone. */
uint64_t ocirun_pid_start_time (pid_t pid);

/* Status from the live process: stopped when the pid is gone or its start
 * time differs (pid reuse), created while exec.fifo exists, paused when the
 * cgroup is frozen (is_frozen given by the caller), else running. */
enum ocirun_status ocirun_state_status (int dirfd, const oci_container_status *st, bool frozen);

/* RFC 3339 with nanoseconds in UTC, as runc prints `created`. */
char *ocirun_now_rfc3339 (void);

#endif
