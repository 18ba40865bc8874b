/* The systemd cgroup driver without systemd: runc's cgroupsPath rules, slice
 * expansion, and linux.resources turned into unit properties. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup/systemd.h"
#include "unit.h"
#include "util.h"

static void
check_parse (const char *path, const char *id, const char *slice, const char *unit)
{
  cleanup_free char *s = NULL, *u = NULL;
  ocirun_error_t err = NULL;
  int ret = ocirun_systemd_parse_path (path, id, false, &s, &u, &err);
  CHECK (ret == 0);
  if (ret < 0)
    {
      fprintf (stderr, "parse `%s`: %s\n", path ? path : "(null)", err->msg);
      ocirun_error_free (&err);
      return;
    }
  CHECK_STREQ (s, slice);
  CHECK_STREQ (u, unit);
}

static void
check_parse_error (const char *path, const char *needle)
{
  cleanup_free char *s = NULL, *u = NULL;
  ocirun_error_t err = NULL;
  int ret = ocirun_systemd_parse_path (path, "id", false, &s, &u, &err);
  CHECK (ret < 0);
  CHECK (s == NULL && u == NULL);
  if (ret < 0)
    {
      CHECK (strstr (err->msg, needle) != NULL);
      if (strstr (err->msg, needle) == NULL)
        fprintf (stderr, "parse `%s`: unexpected message: %s\n", path, err->msg);
      ocirun_error_free (&err);
    }
}

static void
test_parse (void)
{
  check_parse (NULL, "abc", "system.slice", "ocirun-abc.scope");
  check_parse ("", "abc", "system.slice", "ocirun-abc.scope");
  check_parse ("machine.slice:libpod:0123", "x", "machine.slice", "libpod-0123.scope");
  check_parse (":docker:abc", "x", "system.slice", "docker-abc.scope");
  check_parse ("user-1000.slice::ctr", "x", "user-1000.slice", "ctr.scope");
  check_parse_error ("/system.slice/foo", "\"slice:prefix:name\"");
  check_parse_error ("a:b", "\"slice:prefix:name\"");
  check_parse_error ("a:b:c:d", "\"slice:prefix:name\"");
  check_parse_error ("system.slice:p:", "the unit name is empty");
  check_parse_error ("system.slice:p:a/b", "invalid character");
  check_parse_error ("system.slice:p:a b", "invalid character");
  check_parse_error ("system.slice:p:x.slice", "slice as the container's unit");
}

static void
check_expand (const char *slice, const char *want)
{
  cleanup_free char *out = NULL;
  ocirun_error_t err = NULL;
  int ret = ocirun_systemd_expand_slice (slice, &out, &err);
  if (want == NULL)
    {
      CHECK (ret < 0 && out == NULL);
      if (ret < 0)
        {
          CHECK (strstr (err->msg, "invalid slice name") != NULL);
          ocirun_error_free (&err);
        }
      return;
    }
  CHECK (ret == 0);
  if (ret < 0)
    {
      fprintf (stderr, "expand `%s`: %s\n", slice, err->msg);
      ocirun_error_free (&err);
      return;
    }
  CHECK_STREQ (out, want);
}

static void
test_expand (void)
{
  check_expand ("system.slice", "/system.slice");
  check_expand ("-.slice", "/");
  check_expand ("user-1000.slice", "/user.slice/user-1000.slice");
  check_expand ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice");
  check_expand ("machine.slice", "/machine.slice");
  check_expand ("system", NULL);
  check_expand (".slice", NULL);
  check_expand ("-a.slice", NULL);
  check_expand ("a-.slice", NULL);
  check_expand ("a--b.slice", NULL);
  check_expand ("a/b.slice", NULL);
}

static void
test_cpuset_mask (void)
{
  cleanup_free uint8_t *m = NULL;
  ocirun_error_t err = NULL;
  size_t len = 0;

  CHECK (ocirun_systemd_cpuset_mask ("0-3,8", &m, &len, &err) == 0);
  CHECK (len == 2 && m && m[0] == 0x0f && m[1] == 0x01);
  free (m);
  m = NULL;
  CHECK (ocirun_systemd_cpuset_mask ("5", &m, &len, &err) == 0);
  CHECK (len == 1 && m && m[0] == 0x20);
  free (m);
  m = NULL;
  CHECK (ocirun_systemd_cpuset_mask ("1,17\n", &m, &len, &err) == 0);
  CHECK (len == 3 && m && m[0] == 0x02 && m[1] == 0 && m[2] == 0x02);
  free (m);
  m = NULL;
  CHECK (ocirun_systemd_cpuset_mask ("", &m, &len, &err) == 0 && len == 0 && m == NULL);
  CHECK (ocirun_systemd_cpuset_mask ("3-1", &m, &len, &err) < 0 && m == NULL);
  ocirun_error_free (&err);
  CHECK (ocirun_systemd_cpuset_mask ("1;2", &m, &len, &err) < 0);
  CHECK (err && strstr (err->msg, "invalid cpuset list `1;2`"));
  ocirun_error_free (&err);
}

static oci_resources *
parse (const char *json)
{
  ocispec_errors errs = { 0 };
  oci_resources *r = oci_resources_parse_data (json, strlen (json), &errs);
  for (size_t i = 0; i < errs.len; i++)
    fprintf (stderr, "resources: %s\n", errs.msgs[i]);
  ocispec_errors_free (&errs);
  CHECK (r != NULL);
  return r;
}

static uint64_t
prop_u (const struct ocirun_systemd_props *p, const char *name)
{
  const struct ocirun_systemd_prop *x = ocirun_systemd_props_find (p, name);
  if (x == NULL)
    {
      fprintf (stderr, "property %s missing\n", name);
      return 0xdeadbeef;
    }
  return x->u;
}

static void
test_props (void)
{
  struct ocirun_systemd_props p = { 0 };
  ocirun_error_t err = NULL;
  oci_resources *r;

  r = parse ("{\"memory\":{\"limit\":67108864,\"reservation\":33554432,\"swap\":100663296},"
             "\"cpu\":{\"shares\":1024,\"quota\":50000,\"period\":100000,\"cpus\":\"0-1\",\"mems\":\"0\"},"
             "\"pids\":{\"limit\":42},\"blockIO\":{\"weight\":500}}");
  if (r == NULL)
    return;
  CHECK (ocirun_systemd_resource_props (r, OCIRUN_CGROUP_V2, &p, &err) == 0);
  CHECK (prop_u (&p, "MemoryMax") == 67108864);
  CHECK (prop_u (&p, "MemoryLow") == 33554432);
  CHECK (prop_u (&p, "MemorySwapMax") == 33554432);
  CHECK (prop_u (&p, "CPUWeight") == 39); /* cpu.shares 1024, as resources.c converts it */
  CHECK (prop_u (&p, "CPUQuotaPerSecUSec") == 500000);
  CHECK (prop_u (&p, "CPUQuotaPeriodUSec") == 100000);
  CHECK (prop_u (&p, "TasksMax") == 42);
  CHECK (prop_u (&p, "IOWeight") == 4950); /* blkio 500, as resources.c converts it */
  {
    const struct ocirun_systemd_prop *c = ocirun_systemd_props_find (&p, "AllowedCPUs");
    const struct ocirun_systemd_prop *m = ocirun_systemd_props_find (&p, "AllowedMemoryNodes");
    CHECK (c && c->type == 'y' && c->bytes_len == 1 && c->bytes[0] == 0x03);
    CHECK (m && m->type == 'y' && m->bytes_len == 1 && m->bytes[0] == 0x01);
  }
  CHECK (ocirun_systemd_props_find (&p, "MemoryLimit") == NULL);
  ocirun_systemd_props_clear (&p);

  /* v1 spells them differently and has no v2-only properties. */
  CHECK (ocirun_systemd_resource_props (r, OCIRUN_CGROUP_V1, &p, &err) == 0);
  CHECK (prop_u (&p, "MemoryLimit") == 67108864);
  CHECK (prop_u (&p, "CPUShares") == 1024);
  CHECK (prop_u (&p, "BlockIOWeight") == 500);
  CHECK (ocirun_systemd_props_find (&p, "MemoryMax") == NULL);
  CHECK (ocirun_systemd_props_find (&p, "AllowedCPUs") == NULL);
  ocirun_systemd_props_clear (&p);
  oci_resources_free (r);

  /* -1 is unlimited; a quota that is not a whole percent rounds up. */
  r = parse ("{\"memory\":{\"limit\":-1,\"swap\":-1},\"cpu\":{\"quota\":12345,\"period\":100000},"
             "\"pids\":{\"limit\":-1}}");
  if (r == NULL)
    return;
  CHECK (ocirun_systemd_resource_props (r, OCIRUN_CGROUP_V2, &p, &err) == 0);
  CHECK (prop_u (&p, "MemoryMax") == UINT64_MAX);
  CHECK (prop_u (&p, "MemorySwapMax") == UINT64_MAX);
  CHECK (prop_u (&p, "CPUQuotaPerSecUSec") == 130000);
  CHECK (prop_u (&p, "TasksMax") == UINT64_MAX);
  ocirun_systemd_props_clear (&p);
  oci_resources_free (r);

  /* A period alone: the quota stays unlimited. Nothing set: no property. */
  r = parse ("{\"cpu\":{\"period\":50000},\"pids\":{\"limit\":0}}");
  if (r == NULL)
    return;
  CHECK (ocirun_systemd_resource_props (r, OCIRUN_CGROUP_V2, &p, &err) == 0);
  CHECK (prop_u (&p, "CPUQuotaPerSecUSec") == UINT64_MAX);
  CHECK (prop_u (&p, "CPUQuotaPeriodUSec") == 50000);
  CHECK (ocirun_systemd_props_find (&p, "TasksMax") == NULL);
  CHECK (p.len == 2);
  ocirun_systemd_props_clear (&p);
  oci_resources_free (r);

  /* swap below the limit is refused, as runc does. */
  r = parse ("{\"memory\":{\"limit\":2000000,\"swap\":1000000}}");
  if (r == NULL)
    return;
  CHECK (ocirun_systemd_resource_props (r, OCIRUN_CGROUP_V2, &p, &err) < 0);
  CHECK (err && strstr (err->msg, "must not be lower than memory.limit"));
  CHECK (p.len == 0 && p.p == NULL);
  ocirun_error_free (&err);
  oci_resources_free (r);

  r = parse ("{\"cpu\":{\"cpus\":\"0-x\"}}");
  if (r == NULL)
    return;
  CHECK (ocirun_systemd_resource_props (r, OCIRUN_CGROUP_V2, &p, &err) < 0);
  CHECK (err && strstr (err->msg, "linux.resources.cpu.cpus: invalid cpuset list"));
  ocirun_error_free (&err);
  oci_resources_free (r);

  CHECK (ocirun_systemd_resource_props (NULL, OCIRUN_CGROUP_V2, &p, &err) == 0 && p.len == 0);
}

/* The device properties as one line: "DevicePolicy=strict DeviceAllow=
 * DeviceAllow=char-* m,/dev/char/1:3 rwm" (each DeviceAllow in order). */
static char *
device_line (const struct ocirun_systemd_props *p)
{
  char *out = xstrdup ("");
  for (size_t i = 0; i < p->len; i++)
    {
      const struct ocirun_systemd_prop *x = &p->p[i];
      char *next = NULL;
      if (x->type == 's')
        xasprintf (&next, "%s%s%s=%s", out, *out ? " " : "", x->name, x->str);
      else if (x->type == 'D')
        {
          xasprintf (&next, "%s%s%s=", out, *out ? " " : "", x->name);
          for (size_t j = 0; j < x->pairs_len; j++)
            {
              char *more = NULL;
              xasprintf (&more, "%s%s%s %s", next, j ? "," : "", x->pairs[2 * j], x->pairs[2 * j + 1]);
              free (next);
              next = more;
            }
        }
      else
        continue;
      free (out);
      out = next;
    }
  return out;
}

#define RULE(allow, type, major, minor, access)                                                                        \
  {                                                                                                                    \
    allow, type, major, minor, access                                                                                  \
  }

static void
check_devices (const struct ocirun_device_rule *rules, size_t n, const char *want)
{
  struct ocirun_systemd_props p = { 0 };
  ocirun_error_t err = NULL;
  cleanup_free char *line = NULL;
  int ret = ocirun_systemd_device_props (rules, n, NULL, &p, &err);

  CHECK (ret == 0);
  if (ret < 0)
    {
      fprintf (stderr, "device props: %s\n", err->msg);
      ocirun_error_free (&err);
      return;
    }
  line = device_line (&p);
  CHECK_STREQ (line, want);
  ocirun_systemd_props_clear (&p);
}

static void
test_devices (void)
{
  /* The usual config: deny all, then runc's defaults; sorted by major,
   * minor (any first), type, as runc lists them. */
  const struct ocirun_device_rule usual[] = {
    RULE (false, 'a', -1, -1, "rwm"), RULE (true, 'c', -1, -1, "m"), RULE (true, 'b', -1, -1, "m"),
    RULE (true, 'c', 1, 3, "rwm"),    RULE (true, 'c', 1, 8, "rwm"), RULE (true, 'c', 1, 7, "rwm"),
    RULE (true, 'c', 5, 0, "rwm"),    RULE (true, 'c', 1, 5, "rwm"), RULE (true, 'c', 1, 9, "rwm"),
    RULE (true, 'c', 136, -1, "rwm"), RULE (true, 'c', 5, 2, "rwm"), RULE (true, 'c', 10, 200, "rwm"),
  };
  check_devices (usual, sizeof usual / sizeof usual[0],
                 "DevicePolicy=strict DeviceAllow= DeviceAllow=block-* m,char-* m,/dev/char/1:3 rwm,"
                 "/dev/char/1:5 rwm,/dev/char/1:7 rwm,/dev/char/1:8 rwm,/dev/char/1:9 rwm,/dev/char/5:0 rwm,"
                 "/dev/char/5:2 rwm,/dev/char/10:200 rwm,char-136 rwm");

  /* Permissions of one device merge (in rwm order); a later deny takes
   * them away; block devices by path too. */
  const struct ocirun_device_rule merge[] = {
    RULE (true, 'c', 4, 1, "w"),  RULE (true, 'c', 4, 1, "mr"), RULE (true, 'b', 7, 0, "rwm"),
    RULE (false, 'b', 7, 0, "w"), RULE (true, 'c', 4, 2, "r"),  RULE (false, 'c', 4, 2, "rwm"),
    RULE (true, 'b', 8, -1, "r"),
  };
  check_devices (merge, sizeof merge / sizeof merge[0],
                 "DevicePolicy=strict DeviceAllow= DeviceAllow=/dev/char/4:1 rwm,/dev/block/7:0 rm,block-8 r");

  /* Any "a" rule resets the list: everything before it is gone. */
  const struct ocirun_device_rule reset[] = {
    RULE (true, 'c', 1, 3, "rwm"),
    RULE (false, 'a', 3, 4, "r"),
    RULE (true, 'c', 1, 5, "r"),
  };
  check_devices (reset, 3, "DevicePolicy=strict DeviceAllow= DeviceAllow=/dev/char/1:5 r");

  /* No rules: deny everything. Allow-all: systemd's "auto" and no list. */
  check_devices (NULL, 0, "DevicePolicy=strict DeviceAllow= DeviceAllow=");
  const struct ocirun_device_rule all[] = { RULE (false, 'c', 1, 3, "r"), RULE (true, 'a', -1, -1, "rwm") };
  check_devices (all, 2, "DevicePolicy=auto DeviceAllow=");

  /* A deny-list cannot be said to systemd: strict and nothing allowed
   * (the cgroup's own rules then apply the list), as with runc. */
  const struct ocirun_device_rule deny[] = { RULE (true, 'a', -1, -1, "rwm"), RULE (false, 'c', 1, 3, "rwm") };
  check_devices (deny, 2, "DevicePolicy=strict DeviceAllow=");

  /* Any major with one minor has no DeviceAllow form: left out. */
  const struct ocirun_device_rule anymajor[] = { RULE (true, 'c', -1, 3, "r"), RULE (true, 'c', 1, 3, "r") };
  check_devices (anymajor, 2, "DevicePolicy=strict DeviceAllow= DeviceAllow=/dev/char/1:3 r");

  /* Denying part of an allowed wildcard is refused, as runc refuses it. */
  {
    const struct ocirun_device_rule hole[] = { RULE (true, 'c', 1, -1, "rwm"), RULE (false, 'c', 1, 3, "w") };
    struct ocirun_systemd_props p = { 0 };
    ocirun_error_t err = NULL;
    CHECK (ocirun_systemd_device_props (hole, 2, NULL, &p, &err) < 0);
    CHECK (p.len == 0);
    CHECK (err && strstr (err->msg, "systemd cgroup driver: device rule `deny c 1:3 w` cannot be applied")
           && strstr (err->msg, "wildcard rule `c 1:* rwm`"));
    ocirun_error_free (&err);
  }
}

static void
test_user (void)
{
  cleanup_free char *s = NULL, *u = NULL;
  ocirun_error_t err = NULL;

  /* A user manager has no system.slice: runc's default is user.slice. */
  CHECK (ocirun_systemd_parse_path ("", "abc", true, &s, &u, &err) == 0);
  CHECK_STREQ (s, "user.slice");
  CHECK_STREQ (u, "ocirun-abc.scope");
  free (s);
  free (u);
  s = u = NULL;
  CHECK (ocirun_systemd_parse_path ("app.slice:p:abc", "abc", true, &s, &u, &err) == 0);
  CHECK_STREQ (s, "app.slice");

  CHECK (ocirun_systemd_path_is_user ("/user.slice/user-1000.slice/user@1000.service/user.slice/x.scope"));
  CHECK (!ocirun_systemd_path_is_user ("/system.slice/ocirun-x.scope"));
  CHECK (!ocirun_systemd_path_is_user ("/user.slice/user-1000.slice/session-2.scope"));
  CHECK (!ocirun_systemd_path_is_user ("/system.slice/user@1000.servicex/a.scope"));
}

/* Rootless without a user bus: the message names what was tried. */
static void
test_no_user_bus (void)
{
  struct ocirun_cgroup_request req = { .id = "ocirun-unit-systemd", .systemd = true, .rootless = true };
  struct ocirun_cgroup *cg = NULL;
  ocirun_error_t err = NULL;
  int ret;

  unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  setenv ("XDG_RUNTIME_DIR", "/nonexistent/ocirun-unit", 1);
  ret = ocirun_cgroup_create (&req, &cg, &err);
  CHECK (ret < 0 && cg == NULL);
  if (ret < 0)
    {
      printf ("rootless without a user bus: %s\n", err->msg);
      if (access ("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
        CHECK (strstr (err->msg, "cannot connect to the user bus `unix:path=/nonexistent/ocirun-unit/bus`")
               && strstr (err->msg, "loginctl enable-linger"));
      else
        CHECK (strstr (err->msg, "rootless containers need cgroup v2") != NULL);
      ocirun_error_free (&err);
    }
  unsetenv ("XDG_RUNTIME_DIR");
  if (access ("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
    {
      ret = ocirun_cgroup_create (&req, &cg, &err);
      CHECK (ret < 0 && cg == NULL);
      if (ret < 0)
        {
          CHECK (strstr (err->msg, "neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set") != NULL);
          ocirun_error_free (&err);
        }
    }
  ocirun_cgroup_free (cg);
}

/* Without systemd on the bus (this host) the driver says so plainly. */
static void
test_unreachable (void)
{
  struct ocirun_cgroup_request req = { .id = "ocirun-unit-systemd", .systemd = true };
  struct ocirun_cgroup *cg = NULL;
  ocirun_error_t err = NULL;
  int ret;

  if (access ("/run/systemd/system", F_OK) == 0)
    {
      printf ("systemd is running: skipping the unreachable check\n");
      return;
    }
  ret = ocirun_cgroup_create (&req, &cg, &err);
  CHECK (ret < 0 && cg == NULL);
  if (ret < 0)
    {
      CHECK (strstr (err->msg, "systemd cgroup driver: cannot reach systemd over D-Bus") != NULL);
      printf ("without systemd: %s\n", err->msg);
      ocirun_error_free (&err);
    }
  ocirun_cgroup_free (cg);
}

int
main (void)
{
  test_parse ();
  test_expand ();
  test_cpuset_mask ();
  test_props ();
  test_devices ();
  test_user ();
  test_no_user_bus ();
  test_unreachable ();
  UNIT_DONE ();
}
