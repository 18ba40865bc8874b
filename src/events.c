#include "config.h"
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum
{
  OPT_INTERVAL = 256,
  OPT_STATS,
};

struct events_opts
{
  const char *interval;
  bool stats;
  int first_arg;
};

static struct argp_option options[] = {
  { "interval", OPT_INTERVAL, "DURATION", 0, "set the stats collection interval (default: 5s)", 0 },
  { "stats", OPT_STATS, NULL, 0, "display the container's stats then exit", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct events_opts *o = state->input;

  switch (key)
    {
    case OPT_INTERVAL:
      o->interval = arg;
      break;
    case OPT_STATS:
      o->stats = true;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp events_argp
    = { options,
        parse_opt,
        "CONTAINER-ID",
        "Display container events such as OOM notifications, and cpu, memory and IO usage statistics.",
        NULL,
        NULL,
        NULL };

/* A Go time.Duration ("5s", "100ms", "1m30s", "1.5h", "-1s") in
 * milliseconds into *ms (0 when not positive); -1 when it is not one. */
static int
parse_duration_ms (const char *s, uint64_t *ms)
{
  static const struct
  {
    const char *unit;
    double ms;
  } units[] = { { "ns", 1e-6 }, { "us", 1e-3 }, { "\xc2\xb5s", 1e-3 }, { "ms", 1 },
                { "s", 1000 },  { "m", 60000 }, { "h", 3600000 } };
  double total = 0, sign = 1;
  const char *p = s;

  if (*p == '-' || *p == '+')
    sign = *p++ == '-' ? -1 : 1;
  if (strcmp (p, "0") == 0)
    {
      *ms = 0;
      return 0;
    }
  if (*p == '\0')
    return -1;
  while (*p)
    {
      char *end;
      double v = strtod (p, &end);
      size_t best = 0, best_len = 0;
      if (end == p || v < 0 || *p == '-' || *p == '+')
        return -1;
      p = end;
      for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        {
          size_t n = strlen (units[i].unit);
          if (strncmp (p, units[i].unit, n) == 0 && n > best_len)
            {
              best = i;
              best_len = n;
            }
        }
      if (best_len == 0)
        return -1;
      total += v * units[best].ms;
      p += best_len;
    }
  total *= sign;
  *ms = total <= 0 ? 0 : total < 1 ? 1 : (uint64_t)total;
  return 0;
}

static int
print_event (const char *line, void *data)
{
  struct cli_global *g = data;
  return cli_print (g, line, true) == 0 ? 0 : -EIO;
}

int
cli_cmd_events (struct cli_global *g, int argc, char **argv)
{
  struct events_opts o = { "5s", false, -1 };
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;
  uint64_t interval;
  int ret;

  if (argp_parse (&events_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "events", o.first_arg < 0 ? 0 : argc - o.first_arg, 1, 1))
    return 1;
  if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0)
    return cli_fail (g, &err);
  /* runc: a malformed duration is a usage error, a non-positive one is
   * refused even with --stats. */
  if (parse_duration_ms (o.interval, &interval) < 0)
    return cli_error (g, "invalid value \"%s\" for flag -interval: parse error", o.interval);
  if (interval == 0)
    return cli_error (g, "duration interval must be greater than 0");
  if (o.stats)
    {
      cleanup_free char *json = NULL;
      if (ocirun_container_stats (&ctx, &json, &err) < 0)
        return cli_fail (g, &err);
      return cli_print (g, json, true);
    }
  ret = ocirun_container_events (&ctx, interval, print_event, g, &err);
  if (ret == -EIO)
    return 1;
  if (ret < 0)
    return cli_fail (g, &err);
  return 0;
}
