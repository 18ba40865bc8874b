/* The config mounts: option parsing and mounting one oci_mount inside the
 * rootfs. Internal to the rootfs room (rootfs.c, devices.c, path.c). */
#ifndef OCIRUN_MOUNTS_H
#define OCIRUN_MOUNTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "ocispec.h"
#include "setup.h"

#define OCIRUN_MAX_PROPAGATION 8

/* What a mount's `options` array means once parsed. */
struct ocirun_mount_options
{
  unsigned long flags;   /* MS_* to set */
  unsigned long cleared; /* MS_* an option explicitly cleared (rw, suid, exec...) */
  /* Propagation changes (MS_SHARED, MS_SLAVE|MS_REC...), applied in order
   * after the mount. */
  unsigned long propagation[OCIRUN_MAX_PROPAGATION];
  size_t n_propagation;
  /* Recursive attributes (rro, rnosuid...), applied with
   * mount_setattr(AT_RECURSIVE) after the mount. */
  uint64_t attr_set, attr_clr;
  bool tmpcopyup;
  bool idmap;  /* idmap or ridmap */
  bool ridmap; /* recursive idmap */
  char *data;  /* unknown options joined by ',' (mode=755,size=...); NULL when none */
};

void ocirun_mount_options_clear (struct ocirun_mount_options *o);

/* Parses options[0..n) (an unknown option becomes data, like runc). */
int ocirun_parse_mount_options (char *const *options, size_t n, struct ocirun_mount_options *out, ocirun_error_t *err);

/* Parses linux.rootfsPropagation ("rslave", "shared"...; "" gives 0). */
int ocirun_parse_propagation (const char *s, unsigned long *flags, ocirun_error_t *err);

/* Mounts one config mount below c->rootfs_fd (before pivot_root). */
int ocirun_mount_one (struct ocirun_container *c, const oci_mount *m, ocirun_error_t *err);

/* For an idmap/ridmap bind mount: a detached clone of its source with the
 * idmapping applied (the mount's own uid/gidMappings, else the user namespace
 * userns_fd), to be attached later with move_mount. Runs on the host side.
 * Returns the tree fd; callers check ocirun_mount_is_idmap first. */
int ocirun_idmap_tree (struct ocirun_container *c, const oci_mount *m, int userns_fd, ocirun_error_t *err);
/* True when the mount's options ask for idmap or ridmap. */
bool ocirun_mount_is_idmap (const oci_mount *m);

/* True when `path` names /dev (however many slashes). */
bool ocirun_path_is_dev (const char *path);

/* True when the mount is a bind mount (type bind, or a bind/rbind option). */
bool ocirun_mount_is_bind (const oci_mount *m);

/* The statvfs flags of the mount at `path` as MS_* flags, the ones an
 * unprivileged remount must keep (nosuid, nodev, noexec, atime, ro). */
unsigned long ocirun_locked_mount_flags (const char *path);

/* Remounts the mount at `path` (a /proc/self/fd/N path or a path in the
 * current root) with MS_REMOUNT|MS_BIND|flags, retrying with the locked flags
 * kept when the kernel refuses (user namespaces). `what` names it in errors. */
int ocirun_remount_bind (const char *path, unsigned long flags, const char *what, ocirun_error_t *err);

/* When the mount holding `path` is shared, makes it private: pivot_root
 * refuses a new root whose parent mount is shared, and the rootfs bind
 * mount must not propagate back to the host. */
int ocirun_make_parent_mount_private (const char *path, ocirun_error_t *err);

/* path.c: the component walk openat2 falls back to (exported for tests). */
int ocirun_open_in_root_walk (int rootfs_fd, const char *path, int flags, mode_t mode, ocirun_error_t *err);

#endif
