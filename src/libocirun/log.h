/* Diagnostics: text lines (`level=... msg=...` like runc) or JSON lines
 * ({"level","msg","time"}, what containerd's shim reads) written to the fd the
 * CLI chose (the --log file, or stderr). The library only ever writes through
 * a logger handed to it. */
#ifndef OCIRUN_LOG_H
#define OCIRUN_LOG_H

#include <stdbool.h>

enum ocirun_log_level
{
  OCIRUN_LOG_ERROR = 0,
  OCIRUN_LOG_WARNING,
  OCIRUN_LOG_INFO,
  OCIRUN_LOG_DEBUG,
};

enum ocirun_log_format
{
  OCIRUN_LOG_TEXT = 0,
  OCIRUN_LOG_JSON,
};

struct ocirun_logger
{
  int fd; /* -1: discard */
  enum ocirun_log_format format;
  enum ocirun_log_level max_level; /* lines above this level are dropped */
};

void ocirun_log (struct ocirun_logger *l, enum ocirun_log_level level, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#define ocirun_debug(l, ...) ocirun_log ((l), OCIRUN_LOG_DEBUG, __VA_ARGS__)
#define ocirun_warning(l, ...) ocirun_log ((l), OCIRUN_LOG_WARNING, __VA_ARGS__)

/* Formats one line (with trailing newline) as the logger would write it. */
char *ocirun_log_format_line (enum ocirun_log_format format, enum ocirun_log_level level, const char *msg);

#endif
