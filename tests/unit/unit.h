/* A tiny test harness for the C unit tests: CHECK records a failure and
 * keeps going; the program exits 1 if anything failed (automake TESTS). */
#ifndef OCIRUN_UNIT_H
#define OCIRUN_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failures;
static int unit_checks;

#define CHECK(cond)                                                                                                    \
  do                                                                                                                   \
    {                                                                                                                  \
      unit_checks++;                                                                                                   \
      if (!(cond))                                                                                                     \
        {                                                                                                              \
          unit_failures++;                                                                                             \
          fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                                    \
        }                                                                                                              \
    }                                                                                                                  \
  while (0)

#define CHECK_STREQ(a, b)                                                                                              \
  do                                                                                                                   \
    {                                                                                                                  \
      const char *_a = (a), *_b = (b);                                                                                 \
      unit_checks++;                                                                                                   \
      if (_a == NULL || _b == NULL || strcmp (_a, _b) != 0)                                                            \
        {                                                                                                              \
          unit_failures++;                                                                                             \
          fprintf (stderr, "%s:%d: CHECK_STREQ failed:\n  got:      %s\n  expected: %s\n", __FILE__, __LINE__,         \
                   _a ? _a : "(null)", _b ? _b : "(null)");                                                            \
        }                                                                                                              \
    }                                                                                                                  \
  while (0)

#define UNIT_DONE()                                                                                                    \
  do                                                                                                                   \
    {                                                                                                                  \
      printf ("%d checks, %d failed\n", unit_checks, unit_failures);                                                   \
      return unit_failures ? 1 : 0;                                                                                    \
    }                                                                                                                  \
  while (0)

#endif
