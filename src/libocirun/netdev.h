/* linux.netDevices (runtime-spec 1.2+). */
#ifndef OCIRUN_NETDEV_H
#define OCIRUN_NETDEV_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "ocispec.h"

/* Names valid, and a network namespace to put them in. */
int ocirun_netdev_validate (const oci_linux *linux, bool has_netns, ocirun_error_t *err);
/* Moves every device into the network namespace of pid (renaming it). */
int ocirun_netdev_move_in (const oci_linux *linux, pid_t pid, ocirun_error_t *err);
/* Moves the devices from the namespace at netns_path back here, with their
 * host names (for a namespace that outlives the container). */
int ocirun_netdev_move_back (const oci_linux *linux, const char *netns_path, ocirun_error_t *err);

#endif
