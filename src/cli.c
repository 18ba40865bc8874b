#include "config.h"
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
cli_error (struct cli_global *g, const char *fmt, ...)
{
  cleanup_free char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  if (msg == NULL)
    msg = xstrdup ("out of memory");

  /* The last line of the --log file is what containerd shows the user.
   * stderr always gets one plain line (runc wraps it in a logrus line when
   * there is no --log file; a person reads this one better). */
  if (g->log_file != NULL)
    ocirun_log (&g->logger, OCIRUN_LOG_ERROR, "%s", msg);
  fprintf (stderr, "ocirun: %s\n", msg);
  return 1;
}

int
cli_fail (struct cli_global *g, ocirun_error_t *err)
{
  int ret = cli_error (g, "%s", (err && *err && (*err)->msg) ? (*err)->msg : "unknown error");
  ocirun_error_free (err);
  return ret;
}

bool
cli_criu_opt (int key, char *arg, struct ocirun_criu_request *req)
{
  switch (key)
    {
    case CLI_OPT_IMAGE_PATH:
      req->image_path = arg;
      return true;
    case CLI_OPT_WORK_PATH:
      req->work_path = arg;
      return true;
    case CLI_OPT_TCP_ESTABLISHED:
      req->tcp_established = true;
      return true;
    case CLI_OPT_EXT_UNIX_SK:
      req->ext_unix_sk = true;
      return true;
    case CLI_OPT_SHELL_JOB:
      req->shell_job = true;
      return true;
    case CLI_OPT_FILE_LOCKS:
      req->file_locks = true;
      return true;
    case CLI_OPT_MANAGE_CGROUPS_MODE:
      req->manage_cgroups_mode = arg;
      return true;
    case CLI_OPT_EMPTY_NS:
      req->empty_ns = xrealloc (req->empty_ns, (req->n_empty_ns + 1) * sizeof (char *));
      req->empty_ns[req->n_empty_ns++] = arg;
      return true;
    case CLI_OPT_AUTO_DEDUP:
      req->auto_dedup = true;
      return true;
    case CLI_OPT_LAZY_PAGES:
      req->lazy_pages = true;
      return true;
    default:
      return false;
    }
}

int
cli_check_args (struct cli_global *g, const char *cmd, int n, int min, int max)
{
  if (min == max && n != min)
    return cli_error (g, "\"%s\" requires exactly %d argument(s)", cmd, min);
  if (n < min)
    return cli_error (g, "\"%s\" requires a minimum of %d argument(s)", cmd, min);
  if (max >= 0 && n > max)
    return cli_error (g, "\"%s\" requires a maximum of %d argument(s)", cmd, max);
  return 0;
}

int
cli_parse_uint (const char *s, long *out)
{
  char *end = NULL;
  long v;

  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtol (s, &end, 10);
  if (errno != 0 || *end != '\0')
    return -1;
  *out = v;
  return 0;
}

/* Root in a user namespace is rootless too: the identity map covering every
 * uid is what the initial namespace has. */
static bool
in_user_namespace (void)
{
  cleanup_fclose FILE *f = fopen ("/proc/self/uid_map", "re");
  unsigned long a, b, c;

  if (f == NULL)
    return false;
  if (fscanf (f, "%lu %lu %lu", &a, &b, &c) != 3)
    return false;
  return !(a == 0 && b == 0 && c == 4294967295UL);
}

/* Whether the default state root is under $XDG_RUNTIME_DIR, as runc decides:
 * for a non-root user, and for root inside a user namespace (rootless podman
 * runs the runtime there, as uid 0, without --root) unless $USER says root. */
static bool
use_xdg_runtime_dir (void)
{
  const char *user;

  if (geteuid () != 0)
    return true;
  if (!in_user_namespace ())
    return false;
  user = getenv ("USER");
  return user == NULL || strcmp (user, "root") != 0;
}

bool
cli_rootless (struct cli_global *g)
{
  if (g->rootless && strcmp (g->rootless, "true") == 0)
    return true;
  if (g->rootless && strcmp (g->rootless, "false") == 0)
    return false;
  return geteuid () != 0 || in_user_namespace ();
}

int
cli_init_context (struct cli_global *g, struct ocirun_context *ctx, const char *id, ocirun_error_t *err)
{
  memset (ctx, 0, sizeof *ctx);
  if (id)
    {
      int ret = ocirun_validate_id (id, err);
      if (ret < 0)
        return ret;
    }
  if (g->root == NULL)
    {
      if (g->default_root == NULL)
        g->default_root = ocirun_default_root (use_xdg_runtime_dir ());
      g->root = g->default_root;
    }
  ctx->root = g->root;
  ctx->id = id;
  ctx->config_file = "config.json";
  ctx->criu = g->criu;
  ctx->systemd_cgroup = g->systemd_cgroup;
  ctx->rootless = cli_rootless (g);
  ctx->log = &g->logger;
  /* Socket activation (sd_listen_fds): the fds are ours only when
   * LISTEN_PID names this process. */
  {
    const char *fds = getenv ("LISTEN_FDS"), *pid = getenv ("LISTEN_PID");
    long n, p;
    if (fds && pid && cli_parse_uint (fds, &n) == 0 && cli_parse_uint (pid, &p) == 0 && p == (long)getpid () && n > 0
        && n < 1024)
      ctx->listen_fds = (int)n;
  }
  return 0;
}

/* ---- JSON re-indentation ---- */

struct out
{
  char *s;
  size_t len, cap;
};

static void
out_add (struct out *o, const char *s, size_t n)
{
  if (o->len + n + 1 > o->cap)
    {
      o->cap = (o->len + n + 1) * 2;
      o->s = xrealloc (o->s, o->cap);
    }
  memcpy (o->s + o->len, s, n);
  o->len += n;
  o->s[o->len] = '\0';
}

static void
out_newline (struct out *o, const char *indent, int depth)
{
  out_add (o, "\n", 1);
  for (int i = 0; i < depth; i++)
    out_add (o, indent, strlen (indent));
}

static const char *
skip_ws (const char *p)
{
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

char *
cli_json_reindent (const char *json, const char *indent)
{
  struct out o = { NULL, 0, 0 };
  int depth = 0;
  const char *p = json;

  out_add (&o, "", 0);
  for (p = skip_ws (p); *p; p = skip_ws (p))
    {
      switch (*p)
        {
        case '"':
          {
            const char *start = p++;
            while (*p && *p != '"')
              p += (*p == '\\' && p[1]) ? 2 : 1;
            if (*p != '"')
              goto fail;
            p++;
            out_add (&o, start, (size_t)(p - start));
            break;
          }
        case '{':
        case '[':
          {
            const char *next = skip_ws (p + 1);
            char close = *p == '{' ? '}' : ']';
            if (*next == close)
              {
                out_add (&o, p, 1);
                out_add (&o, &close, 1);
                p = next + 1;
                break;
              }
            out_add (&o, p++, 1);
            out_newline (&o, indent, ++depth);
            break;
          }
        case '}':
        case ']':
          if (depth == 0)
            goto fail;
          out_newline (&o, indent, --depth);
          out_add (&o, p++, 1);
          break;
        case ',':
          out_add (&o, ",", 1);
          out_newline (&o, indent, depth);
          p++;
          break;
        case ':':
          out_add (&o, ": ", 2);
          p++;
          break;
        default:
          {
            const char *start = p;
            while (*p && !strchr (" \t\r\n,:{}[]\"", *p))
              p++;
            out_add (&o, start, (size_t)(p - start));
          }
        }
    }
  if (depth != 0)
    goto fail;
  return o.s;

fail:
  free (o.s);
  return NULL;
}

int
cli_print (struct cli_global *g, const char *s, bool with_newline)
{
  if (fputs (s, stdout) == EOF || (with_newline && putchar ('\n') == EOF) || fflush (stdout) == EOF)
    return cli_error (g, "write to stdout: %s", strerror (errno));
  return 0;
}
