/* /dev inside the container: default and configured device nodes, the
 * standard symlinks, /dev/console. Internal to the rootfs room. */
#ifndef OCIRUN_DEVICES_H
#define OCIRUN_DEVICES_H

#include <stdbool.h>

#include "error.h"
#include "setup.h"

/* True unless /dev is a bind mount (then it is the host's and left alone). */
bool ocirun_needs_setup_dev (const oci_config *config);

/* Creates the default devices (null zero full random urandom tty) and
 * linux.devices, by mknod or, in a user namespace or when mknod is refused,
 * by bind-mounting the host's node. */
int ocirun_create_devices (struct ocirun_container *c, bool setup_dev, ocirun_error_t *err);

/* /dev/ptmx, /dev/fd, /dev/std{in,out,err}, /dev/core. */
int ocirun_setup_dev_symlinks (struct ocirun_container *c, ocirun_error_t *err);

/* Bind-mounts c->console_slave on /dev/console (when set). */
int ocirun_setup_console (struct ocirun_container *c, ocirun_error_t *err);

#endif
