#include "config.h"
#include "passwd.h"
#include "util.h"

#include <errno.h>
#include <string.h>

char *
ocirun_passwd_lookup (const char *path, uid_t uid, enum ocirun_passwd_field field)
{
  cleanup_fclose FILE *f = NULL;
  cleanup_free char *line = NULL;
  size_t cap = 0;

  f = fopen (path, "re");
  if (f == NULL)
    return NULL;
  while (getline (&line, &cap, f) > 0)
    {
      char *fields[7];
      char *p = line;
      size_t n = 0;
      unsigned long id;
      char *end;

      line[strcspn (line, "\n")] = '\0';
      while (n < 7)
        {
          fields[n++] = p;
          p = strchr (p, ':');
          if (p == NULL)
            break;
          *p++ = '\0';
        }
      /* name:password:uid at least; a short line has empty later fields. */
      if (n < 3 || fields[2][0] == '\0')
        continue;
      errno = 0;
      id = strtoul (fields[2], &end, 10);
      if (errno || *end || id != uid)
        continue;
      return xstrdup ((size_t)field < n ? fields[field] : "");
    }
  return NULL;
}
