#include "config.h"
#include "ocirun.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Names glibc's sigabbrev_np does not return but users (and runc, through
 * Go's x/sys table) accept. */
static const struct
{
  const char *name;
  int signo;
} aliases[] = {
  { "IOT", SIGABRT },
  { "CLD", SIGCHLD },
  { "POLL", SIGIO },
  { "PWR", SIGPWR },
};

static int
parse_number (const char *s, long *out)
{
  char *end = NULL;
  long v;

  if (*s == '\0' || !isdigit ((unsigned char)*s))
    return -1;
  errno = 0;
  v = strtol (s, &end, 10);
  if (errno != 0 || *end != '\0')
    return -1;
  *out = v;
  return 0;
}

/* RTMIN, RTMIN+N, RTMAX, RTMAX-N (the forms kill(1) and runc accept). */
static int
parse_rt (const char *name, int *signo)
{
  long n = 0;
  int base, v;

  if (strncasecmp (name, "RTMIN", 5) == 0)
    {
      base = SIGRTMIN;
      if (name[5] == '\0')
        v = base;
      else if (name[5] == '+' && parse_number (name + 6, &n) == 0)
        v = base + (n > SIGRTMAX ? SIGRTMAX : (int)n);
      else
        return -1;
    }
  else if (strncasecmp (name, "RTMAX", 5) == 0)
    {
      base = SIGRTMAX;
      if (name[5] == '\0')
        v = base;
      else if (name[5] == '-' && parse_number (name + 6, &n) == 0)
        v = base - (n > SIGRTMAX ? SIGRTMAX : (int)n);
      else
        return -1;
    }
  else
    return -1;
  if (v < SIGRTMIN || v > SIGRTMAX)
    return -1;
  *signo = v;
  return 0;
}

int
ocirun_parse_signal (const char *s, int *signo, ocirun_error_t *err)
{
  const char *name;
  long n;

  if (s == NULL || *s == '\0')
    return ocirun_make_error (err, -EINVAL, "empty signal");

  if (parse_number (s, &n) == 0)
    {
      /* 0 is valid for kill(2): it only checks that the process exists. */
      if (n < 0 || n > SIGRTMAX)
        return ocirun_make_error (err, -EINVAL, "invalid signal number `%s`", s);
      *signo = (int)n;
      return 0;
    }

  name = s;
  if (strncasecmp (name, "SIG", 3) == 0)
    name += 3;

  for (int i = 1; i < SIGRTMIN; i++)
    {
      const char *abbrev = sigabbrev_np (i);
      if (abbrev && strcasecmp (abbrev, name) == 0)
        {
          *signo = i;
          return 0;
        }
    }
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcasecmp (aliases[i].name, name) == 0)
      {
        *signo = aliases[i].signo;
        return 0;
      }
  if (parse_rt (name, signo) == 0)
    return 0;

  return ocirun_make_error (err, -EINVAL, "unknown signal `%s`", s);
}
