#include "config.h"
#include "error.h"
#include "unit.h"

#include <errno.h>
#include <stdlib.h>

static int
fail_open (ocirun_error_t *err)
{
  return ocirun_make_error (err, ENOENT, "open `%s`", "/nope");
}

static int
fail_mount (ocirun_error_t *err)
{
  int ret = fail_open (err);
  if (ret < 0)
    return ocirun_error_prefix (err, "mount `%s`", "/proc");
  return 0;
}

int
main (void)
{
  ocirun_error_t err = NULL;
  int ret;

  ret = fail_mount (&err);
  CHECK (ret == -ENOENT);
  CHECK (err != NULL && err->status == ENOENT);
  CHECK_STREQ (err->msg, "mount `/proc`: open `/nope`: No such file or directory");
  ocirun_error_free (&err);
  CHECK (err == NULL);

  ret = ocirun_make_error (&err, 0, "bad id `%s`", "a/b");
  CHECK (ret == -1);
  CHECK (err->status == 0);
  CHECK_STREQ (err->msg, "bad id `a/b`");
  ocirun_error_free (&err);

  /* NULL err is allowed: callers that do not care still get the code. */
  CHECK (ocirun_make_error (NULL, EPERM, "x") == -EPERM);

  {
    cleanup_error ocirun_error_t scoped = NULL;
    ocirun_make_error (&scoped, EACCES, "scoped");
    CHECK (scoped->status == EACCES);
  }
  UNIT_DONE ();
}
