/* The cgroup v1 devices controller's model of device rules: a default
 * (allow or deny everything) and a list of exceptions, each exactly one
 * (type, major, minor) with some of r, w, m. Replaying rules on it gives
 * what the kernel would end up with; v1.c diffs it against devices.list so
 * that an update writes only what changes, and the systemd driver turns it
 * into DevicePolicy/DeviceAllow. */
#ifndef OCIRUN_CGROUP_DEVICES_RULES_H
#define OCIRUN_CGROUP_DEVICES_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../error.h"
#include "devices-ebpf.h"

enum
{
  OCIRUN_DEV_R = 1,
  OCIRUN_DEV_W = 2,
  OCIRUN_DEV_M = 4,
};

struct ocirun_dev_exception
{
  char type;            /* 'b' or 'c' */
  int64_t major, minor; /* -1: any */
  unsigned perms;       /* OCIRUN_DEV_* */
};

struct ocirun_dev_state
{
  bool default_allow;
  struct ocirun_dev_exception *ex;
  size_t len;
};

void ocirun_dev_state_free (struct ocirun_dev_state *s);
#define cleanup_dev_state __attribute__ ((cleanup (ocirun_dev_state_free)))

unsigned ocirun_dev_perms (const char *access);
/* "rwm", "w"... */
void ocirun_dev_perms_text (unsigned perms, char buf[4]);
/* "c 1:3 rw", "b *:* m" */
void ocirun_dev_text (char type, int64_t major, int64_t minor, unsigned perms, char *buf, size_t size);

struct ocirun_dev_exception *ocirun_dev_find (const struct ocirun_dev_state *s, char type, int64_t major,
                                              int64_t minor);

/* One rule as the kernel applies it: type 'a' resets the default and drops
 * every exception; otherwise a rule against the default adds to an
 * exception and one agreeing with it takes from one. A rule that would take
 * part of a wildcard exception away cannot be expressed (the kernel ignores
 * it): -EINVAL, as runc refuses it. */
int ocirun_dev_apply (struct ocirun_dev_state *s, bool allow, char type, int64_t major, int64_t minor, unsigned perms,
                      ocirun_error_t *err);

/* The state the rules leave, starting from deny-all. */
int ocirun_dev_state_from_rules (const struct ocirun_device_rule *rules, size_t n, struct ocirun_dev_state *s,
                                 ocirun_error_t *err);

/* The state a devices.list text shows: "a *:* rwm" alone for allow-all
 * (whose exceptions the kernel does not list), else the allowed entries. */
int ocirun_dev_state_from_list (const char *list, struct ocirun_dev_state *s, ocirun_error_t *err);

bool ocirun_dev_state_equal (const struct ocirun_dev_state *a, const struct ocirun_dev_state *b);

#endif
