/* process.capabilities with libcap: the bounding set is cut while the
 * process is still root, the other sets are applied after the uid switch
 * (with PR_SET_KEEPCAPS held across it). */
#ifndef OCIRUN_CAPS_H
#define OCIRUN_CAPS_H

#include <sys/capability.h>

#include "error.h"
#include "ocispec.h"

/* Resolves an OCI capability name ("CAP_NET_ADMIN", upper case, as the spec
 * spells them). Fails with "unknown capability `X`". */
int ocirun_cap_from_name (const char *name, cap_value_t *out, ocirun_error_t *err);

/* Drops from the bounding set every capability not in caps->bounding (all of
 * them when caps or the list is NULL, as runc does). Needs CAP_SETPCAP. */
int ocirun_caps_apply_bounding (const oci_capabilities *caps, ocirun_error_t *err);

/* Sets effective/permitted/inheritable exactly to the lists, then clears the
 * ambient set and raises caps->ambient (those not both permitted and
 * inheritable are skipped, as runc does). Unknown names fail; names the
 * running kernel does not know (above cap_last_cap) are skipped. */
int ocirun_caps_apply (const oci_capabilities *caps, ocirun_error_t *err);

#endif
