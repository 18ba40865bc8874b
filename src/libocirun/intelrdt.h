/* linux.intelRdt (resctrl). */
#ifndef OCIRUN_INTELRDT_H
#define OCIRUN_INTELRDT_H

#include <sys/types.h>

#include "error.h"
#include "ocispec.h"

/* Puts pid in its resctrl group and writes the schemata. *owned_group is
 * the group's path when this call created it (to remove on delete). A clear
 * error when the host has no resctrl mount. */
int ocirun_intelrdt_apply (const oci_linux *lx, const char *id, pid_t pid, char **owned_group, ocirun_error_t *err);
int ocirun_intelrdt_remove (const char *owned_group, ocirun_error_t *err);

#endif
