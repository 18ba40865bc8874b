#include "config.h"
#include "error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allocation failure while building an error must not lose the error itself:
 * fall back to a static message rather than aborting. */
static char oom_msg[] = "out of memory while reporting an error";

static void
set_msg (ocirun_error_t e, char *msg)
{
  if (e->msg != oom_msg)
    free (e->msg);
  e->msg = msg ? msg : oom_msg;
}

int
ocirun_make_errorv (ocirun_error_t *err, int errno_, const char *fmt, va_list ap)
{
  bool suffix = errno_ > 0;
  char *head = NULL, *msg = NULL;
  int ret;

  if (errno_ < 0)
    errno_ = -errno_;
  ret = errno_ > 0 ? -errno_ : -1;

  if (err == NULL)
    return ret;
  if (*err != NULL)
    ocirun_error_free (err);

  *err = calloc (1, sizeof (**err));
  if (*err == NULL)
    return ret;
  (*err)->status = errno_ > 0 ? errno_ : 0;

  if (vasprintf (&head, fmt, ap) < 0)
    head = NULL;
  if (head && suffix)
    {
      if (asprintf (&msg, "%s: %s", head, strerror (errno_)) < 0)
        msg = NULL;
      free (head);
    }
  else
    msg = head;
  set_msg (*err, msg);
  return ret;
}

int
ocirun_make_error (ocirun_error_t *err, int errno_, const char *fmt, ...)
{
  va_list ap;
  int ret;

  va_start (ap, fmt);
  ret = ocirun_make_errorv (err, errno_, fmt, ap);
  va_end (ap);
  return ret;
}

int
ocirun_error_ret (ocirun_error_t *err)
{
  if (err == NULL || *err == NULL)
    return -1;
  return (*err)->status > 0 ? -(*err)->status : -1;
}

int
ocirun_error_prefix (ocirun_error_t *err, const char *fmt, ...)
{
  char *prefix = NULL, *msg = NULL;
  va_list ap;

  if (err == NULL || *err == NULL)
    return -1;

  va_start (ap, fmt);
  if (vasprintf (&prefix, fmt, ap) < 0)
    prefix = NULL;
  va_end (ap);
  if (prefix == NULL)
    return ocirun_error_ret (err);

  if (asprintf (&msg, "%s: %s", prefix, (*err)->msg) >= 0)
    set_msg (*err, msg);
  free (prefix);
  return ocirun_error_ret (err);
}

void
ocirun_error_free (ocirun_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  if ((*err)->msg != oom_msg)
    free ((*err)->msg);
  free (*err);
  *err = NULL;
}

void
ocirun_error_freep (ocirun_error_t *err)
{
  ocirun_error_free (err);
}
