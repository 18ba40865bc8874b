#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices-rules.h"
#include "../util.h"

void
ocirun_dev_state_free (struct ocirun_dev_state *s)
{
  free (s->ex);
  s->ex = NULL;
  s->len = 0;
}

static void
reset (struct ocirun_dev_state *s, bool default_allow)
{
  ocirun_dev_state_free (s);
  s->default_allow = default_allow;
}

unsigned
ocirun_dev_perms (const char *access)
{
  unsigned p = 0;
  for (; access && *access; access++)
    p |= *access == 'r' ? OCIRUN_DEV_R : *access == 'w' ? OCIRUN_DEV_W : *access == 'm' ? OCIRUN_DEV_M : 0;
  return p;
}

void
ocirun_dev_perms_text (unsigned perms, char buf[4])
{
  size_t k = 0;
  if (perms & OCIRUN_DEV_R)
    buf[k++] = 'r';
  if (perms & OCIRUN_DEV_W)
    buf[k++] = 'w';
  if (perms & OCIRUN_DEV_M)
    buf[k++] = 'm';
  buf[k] = '\0';
}

void
ocirun_dev_text (char type, int64_t major, int64_t minor, unsigned perms, char *buf, size_t size)
{
  char maj[24] = "*", min[24] = "*", p[4];

  if (major >= 0)
    snprintf (maj, sizeof maj, "%" PRId64, major);
  if (minor >= 0)
    snprintf (min, sizeof min, "%" PRId64, minor);
  ocirun_dev_perms_text (perms, p);
  snprintf (buf, size, "%c %s:%s %s", type, maj, min, p);
}

struct ocirun_dev_exception *
ocirun_dev_find (const struct ocirun_dev_state *s, char type, int64_t major, int64_t minor)
{
  for (size_t i = 0; i < s->len; i++)
    if (s->ex[i].type == type && s->ex[i].major == major && s->ex[i].minor == minor)
      return &s->ex[i];
  return NULL;
}

static void
add (struct ocirun_dev_state *s, char type, int64_t major, int64_t minor, unsigned perms)
{
  struct ocirun_dev_exception *e = ocirun_dev_find (s, type, major, minor);
  if (e)
    {
      e->perms |= perms;
      return;
    }
  s->ex = xrealloc (s->ex, (s->len + 1) * sizeof *s->ex);
  s->ex[s->len++] = (struct ocirun_dev_exception){ type, major, minor, perms };
}

/* The kernel only takes permissions away from an exception with exactly
 * the same type and numbers. */
static int
take (struct ocirun_dev_state *s, char type, int64_t major, int64_t minor, unsigned perms, ocirun_error_t *err)
{
  const int64_t wild[3][2] = { { -1, minor }, { major, -1 }, { -1, -1 } };
  struct ocirun_dev_exception *e;

  for (size_t i = 0; i < 3; i++)
    {
      if (wild[i][0] == major && wild[i][1] == minor)
        continue;
      e = ocirun_dev_find (s, type, wild[i][0], wild[i][1]);
      if (e && (e->perms & perms))
        {
          char rule[80], wide[80];
          ocirun_dev_text (type, major, minor, perms, rule, sizeof rule);
          ocirun_dev_text (type, wild[i][0], wild[i][1], e->perms, wide, sizeof wide);
          return ocirun_make_error (err, -EINVAL,
                                    "device rule `%s %s` cannot be applied: it would punch a hole in the wildcard "
                                    "rule `%s`, which the cgroup v1 devices controller cannot express",
                                    s->default_allow ? "allow" : "deny", rule, wide);
        }
    }
  e = ocirun_dev_find (s, type, major, minor);
  if (e == NULL)
    return 0;
  e->perms &= ~perms;
  if (e->perms == 0)
    *e = s->ex[--s->len];
  return 0;
}

int
ocirun_dev_apply (struct ocirun_dev_state *s, bool allow, char type, int64_t major, int64_t minor, unsigned perms,
                  ocirun_error_t *err)
{
  if (type == 'a')
    {
      reset (s, allow);
      return 0;
    }
  if (allow != s->default_allow)
    {
      add (s, type, major, minor, perms);
      return 0;
    }
  return take (s, type, major, minor, perms, err);
}

int
ocirun_dev_state_from_rules (const struct ocirun_device_rule *rules, size_t n, struct ocirun_dev_state *s,
                             ocirun_error_t *err)
{
  reset (s, false);
  for (size_t i = 0; i < n; i++)
    {
      int ret = ocirun_dev_apply (s, rules[i].allow, rules[i].type, rules[i].major, rules[i].minor,
                                  ocirun_dev_perms (rules[i].access), err);
      if (ret < 0)
        return ret;
    }
  return 0;
}

static int
parse_number (const char *s, size_t n, int64_t *out)
{
  char *end;
  if (n == 1 && s[0] == '*')
    {
      *out = -1;
      return 0;
    }
  errno = 0;
  *out = strtoll (s, &end, 10);
  return (errno || end != s + n || *out < 0) ? -1 : 0;
}

int
ocirun_dev_state_from_list (const char *list, struct ocirun_dev_state *s, ocirun_error_t *err)
{
  cleanup_free char *copy = xstrdup (list);
  char *save = NULL;

  reset (s, false);
  for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char type, *colon, *sp;
      int64_t major, minor;
      unsigned perms;

      type = line[0];
      colon = strchr (line, ':');
      sp = colon ? strchr (colon, ' ') : NULL;
      if ((type != 'a' && type != 'b' && type != 'c') || line[1] != ' ' || colon == NULL || sp == NULL
          || parse_number (line + 2, colon - line - 2, &major) < 0
          || parse_number (colon + 1, sp - colon - 1, &minor) < 0 || (perms = ocirun_dev_perms (sp + 1)) == 0
          || strspn (sp + 1, "rwm") != strlen (sp + 1))
        return ocirun_make_error (err, -EINVAL, "unexpected line `%s`", line);
      if (ocirun_dev_apply (s, true, type, major, minor, perms, err) < 0)
        return -EINVAL;
    }
  return 0;
}

bool
ocirun_dev_state_equal (const struct ocirun_dev_state *a, const struct ocirun_dev_state *b)
{
  if (a->default_allow != b->default_allow || a->len != b->len)
    return false;
  for (size_t i = 0; i < a->len; i++)
    {
      const struct ocirun_dev_exception *e = ocirun_dev_find (b, a->ex[i].type, a->ex[i].major, a->ex[i].minor);
      if (e == NULL || e->perms != a->ex[i].perms)
        return false;
    }
  return true;
}
