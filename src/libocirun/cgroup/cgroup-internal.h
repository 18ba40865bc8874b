/* What the cgroupfs driver's files share: the host's hierarchies (the
 * "layout"), one open directory per hierarchy for a container's cgroup, and
 * the helpers that read and write cgroup knobs through those directories.
 * The layout is a parameter everywhere (never a global) so that tests can
 * drive the v2 code on any cgroup2 tree, e.g. the empty one of a hybrid host. */
#ifndef OCIRUN_CGROUP_CGROUP_INTERNAL_H
#define OCIRUN_CGROUP_CGROUP_INTERNAL_H

#include "cgroup.h"

#define OCIRUN_CGROUP_ROOT "/sys/fs/cgroup"

struct ocirun_cgroup_hierarchy
{
  char *mountpoint;  /* e.g. /sys/fs/cgroup/cpu,cpuacct */
  char *mount_root;  /* the directory of the hierarchy shown there, usually "/" */
  char *controllers; /* "cpu,cpuacct", "name=systemd"; "" for cgroup2 */
  bool unified;      /* a cgroup2 tree */
};

struct ocirun_cgroup_layout
{
  enum ocirun_cgroup_mode mode;
  struct ocirun_cgroup_hierarchy *h;
  size_t len;
};

/* The container's directory in one hierarchy. */
struct ocirun_cgroup_dir
{
  struct ocirun_cgroup_hierarchy h;
  char *path;     /* relative to h.mountpoint, starts with '/' */
  char *abs;      /* h.mountpoint + path, for mkdir and messages */
  int fd;         /* O_DIRECTORY; -1 when the directory does not exist */
  char **created; /* directories this process created, outermost first */
  size_t created_len;
};

struct ocirun_cgroup
{
  enum ocirun_cgroup_mode mode;
  struct ocirun_cgroup_dir *dirs;
  size_t len;
  char *stored_path;
  struct ocirun_logger *log;
  bool rootless;
  /* Rootless without a cgroupsPath: the hierarchies ("pids", "cpu,cpuacct",
   * "" for cgroup2) where the uid may not create the container's cgroup and
   * that it therefore runs without, as runc does. */
  char **denied;
  size_t denied_len;
  struct ocirun_systemd_unit *systemd; /* the scope unit (systemd driver, systemd.c); NULL: cgroupfs */
};

/* Layout: the hierarchies mounted in this mount namespace (mountinfo), and
 * the mode from statfs. */
int ocirun_cgroup_layout_detect (struct ocirun_cgroup_layout *out, ocirun_error_t *err);
void ocirun_cgroup_layout_clear (struct ocirun_cgroup_layout *l);
/* Parses mountinfo text (exposed for tests). */
int ocirun_cgroup_layout_parse_mountinfo (const char *mountinfo, enum ocirun_cgroup_mode mode,
                                          struct ocirun_cgroup_layout *out, ocirun_error_t *err);

/* create/load against an explicit layout; self_cgroup is the text of
 * /proc/self/cgroup (NULL: read it). */
int ocirun_cgroup_create_in (const struct ocirun_cgroup_layout *layout, const char *self_cgroup,
                             const struct ocirun_cgroup_request *req, struct ocirun_cgroup **out, ocirun_error_t *err);
int ocirun_cgroup_load_in (const struct ocirun_cgroup_layout *layout, const char *path, const char *manager,
                           struct ocirun_logger *log, struct ocirun_cgroup **out, ocirun_error_t *err);

/* runc's utils.CleanPath: lexically cleaned, rooted ("/a/b"); *absolute
 * tells whether the input was absolute. NULL for an empty input. */
char *ocirun_cgroup_clean_path (const char *path, bool *absolute);

/* The directory holding controller (v1: the hierarchy that has it; v2: the
 * unified directory); NULL when no hierarchy has it. */
struct ocirun_cgroup_dir *ocirun_cgroup_find (struct ocirun_cgroup *cg, const char *controller);
/* The hierarchy ("cpu,cpuacct") holding controller that cg->denied lists;
 * NULL when the controller was not denied. */
const char *ocirun_cgroup_denied (struct ocirun_cgroup *cg, const char *controller);
/* The unified directory (v2, or the cgroup2 tree of a hybrid host). */
struct ocirun_cgroup_dir *ocirun_cgroup_unified (struct ocirun_cgroup *cg);
bool ocirun_cgroup_has_file (struct ocirun_cgroup_dir *d, const char *file);

/* Writes value to a knob. setting names what the value came from (e.g.
 * "linux.resources.memory.limit") so a missing file or a refused value says
 * which part of the config the host cannot take; hint, when not NULL, is
 * added to the "no such file" message. */
int ocirun_cgroup_write (struct ocirun_cgroup_dir *d, const char *setting, const char *file, const char *value,
                         const char *hint, ocirun_error_t *err);
int ocirun_cgroup_read (struct ocirun_cgroup_dir *d, const char *file, char **out, ocirun_error_t *err);
/* Reads a knob holding one unsigned number ("max" reads as UINT64_MAX). */
int ocirun_cgroup_read_u64 (struct ocirun_cgroup_dir *d, const char *file, uint64_t *out, ocirun_error_t *err);

/* Resources (resources.c). defaults: append runc's always-allowed device
 * rules (creation); linux_devices drop defaults with the same path. */
int ocirun_cgroup_apply_resources (struct ocirun_cgroup *cg, const oci_resources *r, bool creating,
                                   oci_device *const *linux_devices, size_t linux_devices_len, ocirun_error_t *err);
/* The device rules a new cgroup gets: linux.resources.devices, then runc's
 * defaults not replaced by a linux.devices entry (*out refers to r). */
struct ocirun_device_rule;
int ocirun_cgroup_device_rules (const oci_resources *r, oci_device *const *linux_devices, size_t linux_devices_len,
                                struct ocirun_device_rule **out, size_t *len, ocirun_error_t *err);
/* Whether the resources need a controller (devices excepted): rootless
 * without a writable cgroup can only go on when they do not. */
bool ocirun_cgroup_resources_need_controllers (const oci_resources *r);

/* v1.c */
int ocirun_cgroup_v1_prepare (struct ocirun_cgroup_dir *d, ocirun_error_t *err);
int ocirun_cgroup_v1_freeze (struct ocirun_cgroup_dir *freezer, bool frozen, ocirun_error_t *err);
int ocirun_cgroup_v1_is_frozen (struct ocirun_cgroup_dir *freezer, bool *frozen, ocirun_error_t *err);
/* Brings the devices cgroup d to the rules (in order, last match wins),
 * writing only what differs from its devices.list; running: the container
 * runs, and is frozen while a change of default could deny it a device it
 * keeps. */
struct ocirun_device_rule;
int ocirun_cgroup_v1_devices_set (struct ocirun_cgroup *cg, struct ocirun_cgroup_dir *d,
                                  const struct ocirun_device_rule *rules, size_t n, bool running, ocirun_error_t *err);

/* v2.c */
int ocirun_cgroup_v2_prepare (struct ocirun_cgroup_dir *d, ocirun_error_t *err);
int ocirun_cgroup_v2_freeze (struct ocirun_cgroup_dir *d, bool frozen, ocirun_error_t *err);
int ocirun_cgroup_v2_is_frozen (struct ocirun_cgroup_dir *d, bool *frozen, ocirun_error_t *err);
/* 1 when cgroup.kill did the job, 0 when the kernel has no cgroup.kill. */
int ocirun_cgroup_v2_kill_all (struct ocirun_cgroup_dir *d, ocirun_error_t *err);

/* Every pid in d and the cgroups below it. */
int ocirun_cgroup_dir_pids (struct ocirun_cgroup_dir *d, pid_t **pids, size_t *len, ocirun_error_t *err);

#endif
