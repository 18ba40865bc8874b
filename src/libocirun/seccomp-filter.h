/* linux.seccomp turned into a libseccomp filter and loaded into the calling
 * process. */
#ifndef OCIRUN_SECCOMP_H
#define OCIRUN_SECCOMP_H

#include <stdbool.h>

#include "error.h"
#include "ocispec.h"

/* Loads libseccomp (once per process). Call it before the process leaves
 * the host's filesystem: ocirun_seccomp_load never loads it itself. */
int ocirun_seccomp_prepare (ocirun_error_t *err);

/* Whether libseccomp (loaded by ocirun_seccomp_prepare) knows the
 * architecture name ("x86_64"). */
bool ocirun_seccomp_arch_known (const char *name);

/* True when some rule (or the default) uses SCMP_ACT_NOTIFY. */
bool ocirun_seccomp_uses_notify (const oci_seccomp *seccomp);

/* Builds and loads the filter. Does not set no_new_privs (the caller owns
 * that choice; without it loading needs CAP_SYS_ADMIN). When the filter uses
 * SCMP_ACT_NOTIFY, *listener_fd receives the new notification fd (CLOEXEC),
 * else -1. Syscall names unknown on this architecture are skipped, as runc
 * does; unknown actions, operators, architectures and flags fail. */
int ocirun_seccomp_load (const oci_seccomp *seccomp, int *listener_fd, ocirun_error_t *err);

#endif
