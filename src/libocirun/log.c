#include "config.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A growable string; the log code is the only user, so it stays private. */
struct buf
{
  char *s;
  size_t len, cap;
};

static void
buf_add (struct buf *b, const char *s, size_t n)
{
  if (b->len + n + 1 > b->cap)
    {
      b->cap = (b->len + n + 1) * 2;
      b->s = xrealloc (b->s, b->cap);
    }
  memcpy (b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

static void
buf_puts (struct buf *b, const char *s)
{
  buf_add (b, s, strlen (s));
}

static void
buf_putc (struct buf *b, char c)
{
  buf_add (b, &c, 1);
}

static const char *
level_name (enum ocirun_log_level level)
{
  switch (level)
    {
    case OCIRUN_LOG_ERROR:
      return "error";
    case OCIRUN_LOG_WARNING:
      return "warning";
    case OCIRUN_LOG_INFO:
      return "info";
    case OCIRUN_LOG_DEBUG:
    default:
      return "debug";
    }
}

/* RFC 3339 in local time, seconds precision: what logrus writes by default. */
static void
put_time (struct buf *b)
{
  char tmp[64];
  struct tm tm;
  time_t now = time (NULL);
  long off;

  localtime_r (&now, &tm);
  strftime (tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
  buf_puts (b, tmp);
  off = tm.tm_gmtoff;
  if (off == 0)
    buf_putc (b, 'Z');
  else
    {
      char sign = off < 0 ? '-' : '+';
      if (off < 0)
        off = -off;
      snprintf (tmp, sizeof tmp, "%c%02ld:%02ld", sign, off / 3600, (off / 60) % 60);
      buf_puts (b, tmp);
    }
}

/* A quoted string: quotes, backslashes and every control character are
 * escaped, so a message can never break the one-line-per-entry framing
 * containerd relies on. Only how a control character is spelled differs:
 * \u00XX in JSON, \xXX in logrus' text format (Go %q). */
static void
put_quoted (struct buf *b, const char *s, bool json)
{
  buf_putc (b, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    {
      char tmp[8];
      switch (*p)
        {
        case '"':
          buf_puts (b, "\\\"");
          break;
        case '\\':
          buf_puts (b, "\\\\");
          break;
        case '\n':
          buf_puts (b, "\\n");
          break;
        case '\r':
          buf_puts (b, "\\r");
          break;
        case '\t':
          buf_puts (b, "\\t");
          break;
        default:
          if (*p < 0x20 || *p == 0x7f)
            {
              if (json)
                snprintf (tmp, sizeof tmp, "\\u%04x", *p);
              else
                snprintf (tmp, sizeof tmp, "\\x%02x", *p);
              buf_puts (b, tmp);
            }
          else
            buf_putc (b, (char)*p);
        }
    }
  buf_putc (b, '"');
}

static void
put_json_string (struct buf *b, const char *s)
{
  put_quoted (b, s, true);
}

/* logrus' text formatter quotes a value (Go %q style) unless it consists only
 * of "safe" characters. */
static bool
needs_quoting (const char *s)
{
  if (*s == '\0')
    return true;
  for (; *s; s++)
    {
      char c = *s;
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr ("-._/@^+", c)))
        return true;
    }
  return false;
}

static void
put_text_value (struct buf *b, const char *s)
{
  if (needs_quoting (s))
    put_quoted (b, s, false);
  else
    buf_puts (b, s);
}

char *
ocirun_log_format_line (enum ocirun_log_format format, enum ocirun_log_level level, const char *msg)
{
  struct buf b = { NULL, 0, 0 };

  if (msg == NULL)
    msg = "";
  if (format == OCIRUN_LOG_JSON)
    {
      /* Keys in logrus' order (sorted), so lines match runc's byte for byte
       * apart from the time. */
      buf_puts (&b, "{\"level\":\"");
      buf_puts (&b, level_name (level));
      buf_puts (&b, "\",\"msg\":");
      put_json_string (&b, msg);
      buf_puts (&b, ",\"time\":\"");
      put_time (&b);
      buf_puts (&b, "\"}\n");
    }
  else
    {
      buf_puts (&b, "time=\"");
      put_time (&b);
      buf_puts (&b, "\" level=");
      buf_puts (&b, level_name (level));
      buf_puts (&b, " msg=");
      put_text_value (&b, msg);
      buf_putc (&b, '\n');
    }
  return b.s;
}

void
ocirun_log (struct ocirun_logger *l, enum ocirun_log_level level, const char *fmt, ...)
{
  cleanup_free char *msg = NULL;
  cleanup_free char *line = NULL;
  int saved_errno = errno;
  va_list ap;

  if (l == NULL || l->fd < 0 || level > l->max_level)
    return;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  if (msg == NULL)
    goto out;

  line = ocirun_log_format_line (l->format, level, msg);
  /* A log line that cannot be written has nowhere else to go. */
  (void)ocirun_write_all (l->fd, line, strlen (line));
out:
  errno = saved_errno;
}
