#include "config.h"
#include "caps.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

int
ocirun_cap_from_name (const char *name, cap_value_t *out, ocirun_error_t *err)
{
  const char *p;

  /* libcap also accepts numbers and lower case; the spec only knows the
   * upper-case CAP_ names, and runc rejects anything else. */
  if (name == NULL || strncmp (name, "CAP_", 4) != 0 || name[4] == '\0')
    goto unknown;
  for (p = name + 4; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
      goto unknown;
  if (cap_from_name (name, out) < 0)
    goto unknown;
  return 0;

unknown:
  return ocirun_make_error (err, -EINVAL, "unknown capability `%s`", name ? name : "(null)");
}

/* Upper-case name for messages ("CAP_CHOWN"); libcap's own string must go
 * back through cap_free. */
static char *
cap_name (cap_value_t v)
{
  char *lib = cap_to_name (v);
  char *ret, *p;

  if (lib == NULL)
    return NULL;
  ret = xstrdup (lib);
  cap_free (lib);
  for (p = ret; *p; p++)
    if (*p >= 'a' && *p <= 'z')
      *p = (char)(*p - 'a' + 'A');
  return ret;
}

/* Resolves a list into a bit mask of capabilities the kernel knows. */
static int
caps_mask (char **names, size_t n, uint64_t *mask, ocirun_error_t *err)
{
  size_t i;
  int last = cap_max_bits () - 1;

  *mask = 0;
  for (i = 0; i < n && names && names[i]; i++)
    {
      cap_value_t v;
      int ret = ocirun_cap_from_name (names[i], &v, err);
      if (ret < 0)
        return ret;
      /* Known name the running kernel predates: skipped like runc does. */
      if (v > last || v >= 64)
        continue;
      *mask |= UINT64_C (1) << v;
    }
  return 0;
}

int
ocirun_caps_apply_bounding (const oci_capabilities *caps, ocirun_error_t *err)
{
  uint64_t keep;
  int last = cap_max_bits () - 1;
  int ret, c;

  ret = caps_mask (caps ? caps->bounding : NULL, caps ? caps->bounding_len : 0, &keep, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "set capabilities");

  for (c = 0; c <= last && c < 64; c++)
    {
      if (keep & (UINT64_C (1) << c))
        continue;
      if (prctl (PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0 && errno != EINVAL)
        {
          int e = errno;
          cleanup_free char *name = cap_name (c);
          return ocirun_make_error (err, e, "set capabilities: drop `%s` from the bounding set", name ? name : "?");
        }
    }
  return 0;
}

static void
cap_free_p (cap_t *c)
{
  if (*c)
    cap_free (*c);
  *c = NULL;
}
#define cleanup_cap __attribute__ ((cleanup (cap_free_p)))

static int
set_flag (cap_t c, cap_flag_t flag, uint64_t mask)
{
  cap_value_t v;

  for (v = 0; v < 64; v++)
    if (mask & (UINT64_C (1) << v))
      if (cap_set_flag (c, flag, 1, &v, CAP_SET) < 0)
        return -1;
  return 0;
}

/* capset cannot add to the permitted set: a capability the runtime lost
 * itself (a host that drops CAP_SYS_RESOURCE, a rootless parent) is the
 * usual reason for EPERM, so name it. */
static int
explain_capset_eperm (uint64_t wanted, ocirun_error_t *err)
{
  cleanup_cap cap_t cur = cap_get_proc ();
  cap_value_t v;

  for (v = 0; cur && v < 64; v++)
    {
      cap_flag_value_t have = CAP_CLEAR;
      if (!(wanted & (UINT64_C (1) << v)))
        continue;
      if (cap_get_flag (cur, v, CAP_PERMITTED, &have) == 0 && have == CAP_CLEAR)
        {
          cleanup_free char *name = cap_name (v);
          return ocirun_make_error (err, EPERM, "set capabilities: `%s` is not in the runtime's own permitted set",
                                    name ? name : "?");
        }
    }
  return ocirun_make_error (err, EPERM, "set capabilities: capset");
}

int
ocirun_caps_apply (const oci_capabilities *caps, ocirun_error_t *err)
{
  cleanup_cap cap_t c = NULL;
  uint64_t eff = 0, perm = 0, inh = 0, amb = 0;
  cap_value_t v;
  int ret;

  if (caps)
    {
      ret = caps_mask (caps->effective, caps->effective_len, &eff, err);
      if (ret == 0)
        ret = caps_mask (caps->permitted, caps->permitted_len, &perm, err);
      if (ret == 0)
        ret = caps_mask (caps->inheritable, caps->inheritable_len, &inh, err);
      if (ret == 0)
        ret = caps_mask (caps->ambient, caps->ambient_len, &amb, err);
      if (ret < 0)
        return ocirun_error_prefix (err, "set capabilities");
    }

  c = cap_init ();
  if (c == NULL)
    return ocirun_make_error (err, errno, "set capabilities: cap_init");
  if (set_flag (c, CAP_EFFECTIVE, eff) < 0 || set_flag (c, CAP_PERMITTED, perm) < 0
      || set_flag (c, CAP_INHERITABLE, inh) < 0)
    return ocirun_make_error (err, errno, "set capabilities: cap_set_flag");
  if (cap_set_proc (c) < 0)
    {
      int e = errno;
      if (e == EPERM)
        return explain_capset_eperm (eff | perm, err);
      return ocirun_make_error (err, e, "set capabilities: capset");
    }

  /* EINVAL: the kernel has no ambient capabilities (before 4.3). */
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return ocirun_make_error (err, errno, "set capabilities: clear the ambient set");
  for (v = 0; v < 64; v++)
    {
      if (!(amb & (UINT64_C (1) << v)))
        continue;
      /* The kernel only raises ambient caps that are both permitted and
       * inheritable. runc's spec lists ambient caps without inheritable
       * ones and runc ignores the refusal: so do we. */
      if (!(perm & (UINT64_C (1) << v)) || !(inh & (UINT64_C (1) << v)))
        continue;
      if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)v, 0, 0) < 0 && errno != EINVAL)
        {
          int e = errno;
          cleanup_free char *name = cap_name (v);
          return ocirun_make_error (err, e, "set capabilities: raise ambient `%s`", name ? name : "?");
        }
    }
  return 0;
}
