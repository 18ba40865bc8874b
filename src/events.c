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

/* A Go time.Duration ("5s", "100ms", "1m30s", "1.5h"); 0 on error. */
static uint64_t
parse_duration_ms (const char *s)
{
  static const struct
  {
    const char *unit;
    double ms;
  } units[] = { { "ns", 1e-6 }, { "us", 1e-3 }, { "\xc2\xb5s", 1e-3 }, { "ms", 1 },
                { "s", 1000 },  { "m", 60000 }, { "h", 3600000 } };
  double total = 0;
  const char *p = s;

  if (*p == '\0')
    return 0;
  while (*p)
    {
      char *end;
      double v = strtod (p, &end);
      size_t best = 0, best_len = 0;
      if (end == p || v < 0)
        return 0;
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
        return 0;
      total += v * units[best].ms;
      p += best_len;
    }
  return total < 1 ? 1 : (uint64_t)total;
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
  if (o.stats)
    {
      cleanup_free char *json = NULL;
      if (ocirun_container_stats (&ctx, &json, &err) < 0)
        return cli_fail (g, &err);
      return cli_print (g, json, true);
    }
  interval = parse_duration_ms (o.interval);
  if (interval == 0)
    return cli_error (g, "duration for --interval must be greater than 0: `%s`", o.interval);
  ret = ocirun_container_events (&ctx, interval, print_event, g, &err);
  if (ret == -EIO)
    return 1;
  if (ret < 0)
    return cli_fail (g, &err);
  return 0;
}
