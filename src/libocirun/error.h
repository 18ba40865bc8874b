/* The library's error value: an errno plus a message that gathers context as
 * it travels up the stack ("create container `a`: mount `/proc`: EPERM").
 * Functions that can fail take `ocirun_error_t *err` last and return a
 * negative errno (or -1 where no errno applies); they fill *err exactly once. */
#ifndef OCIRUN_ERROR_H
#define OCIRUN_ERROR_H

#include <stdarg.h>

struct ocirun_error_s
{
  int status; /* errno value, 0 when the failure has none */
  char *msg;  /* complete message, including strerror(status) when set */
};
typedef struct ocirun_error_s *ocirun_error_t;

/* Sets *err to "<fmt>: <strerror(errno_)>" (or just <fmt> when errno_ is 0)
 * and returns -errno_ (or -1). A negative errno_ (e.g. -EINVAL) sets that
 * status without the strerror suffix, for messages that already say what is
 * wrong. Safe to call with err == NULL. */
int ocirun_make_error (ocirun_error_t *err, int errno_, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
int ocirun_make_errorv (ocirun_error_t *err, int errno_, const char *fmt, va_list ap);

/* Prepends "<fmt>: " to an existing error and returns the unchanged negative
 * status, so callers can write `return ocirun_error_prefix (err, ...)`. */
int ocirun_error_prefix (ocirun_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Negative return value that matches *err (what ocirun_make_error returned). */
int ocirun_error_ret (ocirun_error_t *err);

void ocirun_error_free (ocirun_error_t *err);
void ocirun_error_freep (ocirun_error_t *err);

#define cleanup_error __attribute__ ((cleanup (ocirun_error_freep)))

/* Shorthand for the common case: fail with the current errno. */
#define ocirun_errno_error(err, ...) ocirun_make_error ((err), errno, __VA_ARGS__)

#endif
