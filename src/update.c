#include "config.h"
#include "cli.h"
#include "util.h"

#include <string.h>

enum
{
  OPT_BLKIO_WEIGHT = 256,
  OPT_CPU_PERIOD,
  OPT_CPU_QUOTA,
  OPT_CPU_SHARE,
  OPT_CPU_RT_PERIOD,
  OPT_CPU_RT_RUNTIME,
  OPT_CPUSET_CPUS,
  OPT_CPUSET_MEMS,
  OPT_MEMORY,
  OPT_MEMORY_RESERVATION,
  OPT_MEMORY_SWAP,
  OPT_PIDS_LIMIT,
  OPT_L3_CACHE_SCHEMA,
  OPT_MEM_BW_SCHEMA,
  OPT_MAX_ = OPT_MEM_BW_SCHEMA,
};

struct update_opts
{
  const char *resources;              /* -r FILE or - */
  const char *values[OPT_MAX_ - 255]; /* indexed by key - OPT_BLKIO_WEIGHT */
  int first_arg;
};

static struct argp_option options[] = {
  { "resources", 'r', "FILE", 0,
    "path to the file containing the resources to update or '-' to read from the standard input (the JSON form of "
    "linux.resources); when given, all other options are ignored",
    0 },
  { "blkio-weight", OPT_BLKIO_WEIGHT, "N", 0, "Specifies per cgroup weight, range is from 10 to 1000", 0 },
  { "cpu-period", OPT_CPU_PERIOD, "USECS", 0,
    "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default", 0 },
  { "cpu-quota", OPT_CPU_QUOTA, "USECS", 0, "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period", 0 },
  { "cpu-share", OPT_CPU_SHARE, "N", 0, "CPU shares (relative weight vs. other containers)", 0 },
  { "cpu-rt-period", OPT_CPU_RT_PERIOD, "USECS", 0,
    "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default", 0 },
  { "cpu-rt-runtime", OPT_CPU_RT_RUNTIME, "USECS", 0,
    "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period", 0 },
  { "cpuset-cpus", OPT_CPUSET_CPUS, "CPUS", 0, "CPU(s) to use", 0 },
  { "cpuset-mems", OPT_CPUSET_MEMS, "MEMS", 0, "Memory node(s) to use", 0 },
  { "memory", OPT_MEMORY, "BYTES", 0, "Memory limit (in bytes)", 0 },
  { "memory-reservation", OPT_MEMORY_RESERVATION, "BYTES", 0, "Memory reservation or soft_limit (in bytes)", 0 },
  { "memory-swap", OPT_MEMORY_SWAP, "BYTES", 0, "Total memory usage (memory + swap); set '-1' to enable unlimited swap",
    0 },
  { "pids-limit", OPT_PIDS_LIMIT, "N", 0, "Maximum number of pids allowed in the container", 0 },
  { "l3-cache-schema", OPT_L3_CACHE_SCHEMA, "SCHEMA", 0, "The string of Intel RDT/CAT L3 cache schema", 0 },
  { "mem-bw-schema", OPT_MEM_BW_SCHEMA, "SCHEMA", 0, "The string of Intel RDT/MBA memory bandwidth schema", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct update_opts *o = state->input;

  if (key >= OPT_BLKIO_WEIGHT && key <= OPT_MAX_)
    {
      o->values[key - OPT_BLKIO_WEIGHT] = arg;
      return 0;
    }
  switch (key)
    {
    case 'r':
      o->resources = arg;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp update_argp
    = { options, parse_opt, "CONTAINER-ID", "Update the resource constraints of a container.", NULL, NULL, NULL };

int
cli_cmd_update (struct cli_global *g, int argc, char **argv)
{
  struct update_opts o;
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;

  memset (&o, 0, sizeof o);
  o.first_arg = -1;
  if (argp_parse (&update_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "update", o.first_arg < 0 ? 0 : argc - o.first_arg, 1, 1))
    return 1;
  if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0)
    return cli_fail (g, &err);
  return cli_not_implemented (g, "update");
}
