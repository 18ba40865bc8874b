/* LSM labels for the process about to execve: AppArmor profile and SELinux
 * label, both applied "on exec" through /proc/self/attr. */
#ifndef OCIRUN_SECURITY_H
#define OCIRUN_SECURITY_H

#include <stdbool.h>

#include "error.h"

/* Whether the LSM is active on this host (works inside the container's
 * mount namespace too). */
bool ocirun_apparmor_enabled (void);
bool ocirun_selinux_enabled (void);

/* Makes the next execve switch to AppArmor `profile`. NULL or "" is a no-op;
 * a profile on a host without AppArmor is an error. */
int ocirun_apparmor_exec_profile (const char *profile, ocirun_error_t *err);

/* Makes the next execve run with SELinux `label`. NULL or "" is a no-op; a
 * label on a host without SELinux is an error. */
int ocirun_selinux_exec_label (const char *label, ocirun_error_t *err);

#endif
