/* Namespaces: the spec's names and their CLONE_ flags, joining by path, and
 * the files a parent writes for a child's new user/time namespace. */
#ifndef OCIRUN_NAMESPACES_H
#define OCIRUN_NAMESPACES_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "ocispec.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* CLONE_NEW* for a spec namespace type ("pid", "network", ...), 0 if unknown. */
int ocirun_ns_flag (const char *type);
/* The /proc/PID/ns/ file name for a CLONE_NEW* flag ("pid", "net", ...). */
const char *ocirun_ns_proc_name (int flag);

/* What a config asks for: namespaces to create, and namespaces to join (fds
 * opened on their paths, in a fixed order with the user namespace first). */
struct ocirun_ns_plan
{
  int new_flags;  /* CLONE_NEW* to create */
  int join_flags; /* CLONE_NEW* joined by path */
  int join_fd[8]; /* O_RDONLY|O_CLOEXEC fds, -1 when unused */
  int join_type[8];
  int n_join;
};

/* Opens every path namespace now (so a bad path fails before anything
 * starts) and checks types are known and unique. */
int ocirun_ns_plan_build (const oci_linux *linux, struct ocirun_ns_plan *plan, ocirun_error_t *err);
void ocirun_ns_plan_close (struct ocirun_ns_plan *plan);
/* A plan that joins the namespaces `flags` of process pid, from its
 * /proc/PID/ns files. */
int ocirun_ns_plan_from_pid (pid_t pid, int flags, struct ocirun_ns_plan *plan, ocirun_error_t *err);

/* setns() into every joined namespace except those in `skip` (a CLONE_NEW*
 * mask), user namespace first. */
int ocirun_ns_join (struct ocirun_ns_plan *plan, int skip, ocirun_error_t *err);

/* Writes /proc/PID/{setgroups,uid_map,gid_map}. setgroups is set to "deny"
 * only when deny_setgroups (unprivileged mapping). */
int ocirun_ns_write_id_maps (pid_t pid, const oci_linux *linux, bool deny_setgroups, ocirun_error_t *err);

/* Writes /proc/self/timens_offsets from linux.timeOffsets (before any
 * process enters the new time namespace). */
int ocirun_ns_write_time_offsets (const oci_linux *linux, ocirun_error_t *err);

#endif
