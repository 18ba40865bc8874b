/* The passwd file read the way runc's user package reads it: the file
 * itself, never NSS (a static ocirun could not load NSS modules safely, and
 * inside a container they would be the container's code). */
#ifndef OCIRUN_PASSWD_H
#define OCIRUN_PASSWD_H

#include <sys/types.h>

enum ocirun_passwd_field
{
  OCIRUN_PASSWD_NAME = 0,
  OCIRUN_PASSWD_HOME = 5,
};

/* The field of uid's first entry in the passwd file at path, malloc'ed;
 * NULL when the file cannot be read or has no entry for uid. */
char *ocirun_passwd_lookup (const char *path, uid_t uid, enum ocirun_passwd_field field);

#endif
