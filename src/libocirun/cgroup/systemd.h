/* The systemd cgroup driver (--systemd-cgroup): the container's cgroup is a
 * transient scope unit that systemd creates (StartTransientUnit over the
 * system bus), with Delegate=yes and the limits systemd knows as unit
 * properties; everything is then also written through the cgroupfs code,
 * as runc does, so settings systemd has no property for still apply.
 *
 * linux.cgroupsPath is runc's "slice:prefix:name": the scope is
 * "prefix-name.scope" in slice (system.slice when empty; "-" is the root
 * slice). An empty cgroupsPath means ":ocirun:ID".
 *
 * Rootless, as with runc, the scope is made by the caller's systemd user
 * manager over the user bus (DBUS_SESSION_BUS_ADDRESS, else
 * $XDG_RUNTIME_DIR/bus), in user.slice by default, and only on cgroup v2:
 * a user manager cannot delegate v1 controllers. Processes of a rootless
 * container are moved into the scope by systemd (ocirun_cgroup_attach):
 * the kernel lets an unprivileged process move a task only below a common
 * ancestor it owns. */
#ifndef OCIRUN_CGROUP_SYSTEMD_H
#define OCIRUN_CGROUP_SYSTEMD_H

#include "cgroup-internal.h"
#include "devices-ebpf.h"

/* A unit property as sent to systemd: type 'b', 't' (uint64), 's' (str),
 * 'y' (the "ay" bitmask of AllowedCPUs/AllowedMemoryNodes) or 'D' (the
 * "a(ss)" of DeviceAllow: pairs_len (path, permissions) pairs in pairs,
 * flattened; none resets the list). */
struct ocirun_systemd_prop
{
  const char *name;
  char type;
  uint64_t u;
  uint8_t *bytes;
  size_t bytes_len;
  char *str;
  char **pairs;
  size_t pairs_len;
};

struct ocirun_systemd_props
{
  struct ocirun_systemd_prop *p;
  size_t len;
};

/* Splits cgroupsPath into the slice unit and the scope unit names; user:
 * the scope goes to a user manager (default slice user.slice). */
int ocirun_systemd_parse_path (const char *cgroups_path, const char *id, bool user, char **slice, char **unit,
                               ocirun_error_t *err);

/* "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" -> "/". */
int ocirun_systemd_expand_slice (const char *slice, char **out, ocirun_error_t *err);

/* A cpuset list ("0-3,8") as systemd's byte mask (bit n of byte n/8). */
int ocirun_systemd_cpuset_mask (const char *list, uint8_t **mask, size_t *len, ocirun_error_t *err);

/* The unit properties for resources r on a host in mode (what systemd
 * calls them differs between v1 and v2). */
int ocirun_systemd_resource_props (const oci_resources *r, enum ocirun_cgroup_mode mode,
                                   struct ocirun_systemd_props *out, ocirun_error_t *err);
/* runc's DevicePolicy and DeviceAllow for the device rules (linux.resources
 * .devices with runc's defaults), appended to out: the rules are replayed
 * onto a deny-all list (an "a" rule resets it), and what remains allowed
 * becomes "strict" + DeviceAllow entries: /dev/{char,block}/MAJ:MIN,
 * {char,block}-MAJ for any minor, {char,block}-* for any device. A rule
 * systemd cannot express (any major, one minor) is left out and reported
 * in log (the cgroupfs/eBPF rules still apply it). Allow-all becomes
 * DevicePolicy=auto with no list; other deny-lists cannot be expressed and
 * become strict with no list, as with runc. Fails on a deny rule that
 * would punch a hole in an allowed wildcard (runc refuses those too). */
int ocirun_systemd_device_props (const struct ocirun_device_rule *rules, size_t n, struct ocirun_logger *log,
                                 struct ocirun_systemd_props *out, ocirun_error_t *err);
void ocirun_systemd_props_clear (struct ocirun_systemd_props *p);
const struct ocirun_systemd_prop *ocirun_systemd_props_find (const struct ocirun_systemd_props *p, const char *name);

/* The driver, called from cgroup.c. */
int ocirun_cgroup_systemd_create (const struct ocirun_cgroup_request *req, struct ocirun_cgroup **out,
                                  ocirun_error_t *err);
int ocirun_cgroup_systemd_load (const char *path, struct ocirun_logger *log, struct ocirun_cgroup **out,
                                ocirun_error_t *err);
/* StopUnit (waiting for the job) and ResetFailedUnit. */
int ocirun_cgroup_systemd_stop (struct ocirun_cgroup *cg, ocirun_error_t *err);
/* `update`: SetUnitProperties (runtime) with what systemd knows; the caller
 * then writes everything through cgroupfs. */
int ocirun_cgroup_systemd_update (struct ocirun_cgroup *cg, const oci_resources *resources,
                                  oci_device *const *linux_devices, size_t linux_devices_len, ocirun_error_t *err);
void ocirun_cgroup_systemd_free (struct ocirun_systemd_unit *u);
/* The unit as seen by a process attached to its sub-cgroup subcgroup
 * ("a/b", relative to the unit's cgroup; exec --cgroup): a user manager's
 * unit moves such processes in itself (ocirun_cgroup_attach). */
struct ocirun_systemd_unit *ocirun_systemd_unit_for_sub (const struct ocirun_systemd_unit *u, const char *subcgroup);

/* Whether the cgroup path (as systemd's ControlGroup) is inside a user
 * manager's tree (".../user@UID.service/..."). */
bool ocirun_systemd_path_is_user (const char *path);

#endif
