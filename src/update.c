#include "config.h"
#include "cli.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <unistd.h>

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
  OPT_KERNEL_MEMORY,
  OPT_KERNEL_MEMORY_TCP,
  OPT_MAX_ = OPT_KERNEL_MEMORY_TCP,
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
  { "kernel-memory", OPT_KERNEL_MEMORY, "BYTES", 0, "Kernel memory limit (in bytes); ignored, as by runc", 0 },
  { "kernel-memory-tcp", OPT_KERNEL_MEMORY_TCP, "BYTES", 0,
    "Kernel memory limit (in bytes) for tcp buffer; ignored, as by runc", 0 },
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

/* Go's strconv.ParseUint / ParseInt, as runc parses these flags. */
static int
parse_u64 (struct cli_global *g, const char *opt, const char *s, uint64_t *out)
{
  char *end;
  errno = 0;
  if (*s < '0' || *s > '9')
    return cli_error (g, "invalid value for %s: strconv.ParseUint: parsing \"%s\": invalid syntax", opt, s);
  *out = strtoull (s, &end, 10);
  if (errno || *end)
    return cli_error (g, "invalid value for %s: strconv.ParseUint: parsing \"%s\": %s", opt, s,
                      errno ? "value out of range" : "invalid syntax");
  return 0;
}

static int
parse_i64 (struct cli_global *g, const char *opt, const char *s, int64_t *out)
{
  char *end;
  errno = 0;
  *out = strtoll (s, &end, 10);
  if (errno || *end || end == s || isspace ((unsigned char)*s))
    return cli_error (g, "invalid value for %s: strconv.ParseInt: parsing \"%s\": %s", opt, s,
                      errno ? "value out of range" : "invalid syntax");
  return 0;
}

/* A flag given as a plain integer (runc's urfave/cli Int64/Uint flags). */
static int
parse_flag_int (struct cli_global *g, const char *opt, const char *s, int64_t *out, bool is_unsigned)
{
  char *end;
  errno = 0;
  *out = strtoll (s, &end, 0);
  if (errno || *end || end == s || (is_unsigned && *out < 0))
    return cli_error (g, "invalid value \"%s\" for flag -%s: parse error", s, opt);
  return 0;
}

/* Docker's units.RAMInBytes: "64m", "1.5g", "512KiB", "100" (bytes);
 * binary multiples; "-1" is passed through as unlimited. */
static int
parse_ram (struct cli_global *g, const char *opt, const char *s, int64_t *out)
{
  static const char units[] = "kmgtp";
  const char *p = s;
  long double v, mult = 1;
  char *end;

  if (strcmp (s, "-1") == 0)
    {
      *out = -1;
      return 0;
    }
  if (!isdigit ((unsigned char)*p))
    goto bad;
  errno = 0;
  v = strtold (p, &end);
  if (errno || end == p)
    goto bad;
  p = end;
  if (*p == ' ')
    p++;
  if (*p && strchr (units, tolower ((unsigned char)*p)))
    {
      for (const char *u = units; *u; u++)
        {
          mult *= 1024;
          if (*u == tolower ((unsigned char)*p))
            break;
        }
      p++;
      if (*p == 'i' || *p == 'I')
        p++;
    }
  if (*p == 'b' || *p == 'B')
    p++;
  if (*p)
    goto bad;
  *out = (int64_t)(v * mult);
  return 0;
bad:
  return cli_error (g, "invalid value for %s: invalid size: '%s'", opt, s);
}

static char *
read_input (struct cli_global *g, const char *path, size_t *len)
{
  cleanup_error ocirun_error_t err = NULL;
  char *text = NULL;

  if (strcmp (path, "-") != 0)
    {
      if (ocirun_read_file (path, &text, len, &err) < 0)
        {
          cli_fail (g, &err);
          return NULL;
        }
      return text;
    }
  {
    size_t cap = 4096, n = 0;
    text = xmalloc0 (cap + 1);
    for (;;)
      {
        ssize_t r = read (0, text + n, cap - n);
        if (r < 0 && errno == EINTR)
          continue;
        if (r < 0)
          {
            cli_error (g, "read the standard input: %s", strerror (errno));
            free (text);
            return NULL;
          }
        if (r == 0)
          break;
        n += (size_t)r;
        if (n == cap)
          {
            cap *= 2;
            text = xrealloc (text, cap + 1);
          }
      }
    text[n] = '\0';
    *len = n;
  }
  return text;
}

static oci_resources *
resources_from_file (struct cli_global *g, const char *path)
{
  cleanup_free char *text = NULL;
  ocispec_errors errs = { NULL, 0 };
  oci_resources *r;
  size_t len = 0;

  text = read_input (g, path, &len);
  if (text == NULL)
    return NULL;
  if (strspn (text, " \t\r\n") == len)
    {
      /* What Go's JSON decoder says about an empty input. */
      cli_error (g, "EOF");
      return NULL;
    }
  r = oci_resources_parse_data (text, len, &errs);
  if (r == NULL)
    {
      cli_error (g, "%s: %s", strcmp (path, "-") == 0 ? "standard input" : path,
                 errs.len ? errs.msgs[0] : "invalid resources");
      ocispec_errors_free (&errs);
      return NULL;
    }
  return r;
}

#define V(opt) o->values[(opt)-OPT_BLKIO_WEIGHT]

/* runc's update flags onto a LinuxResources. */
static oci_resources *
resources_from_flags (struct cli_global *g, const struct update_opts *o)
{
  oci_resources *r = xmalloc0 (sizeof *r);
  static const struct
  {
    int key;
    const char *name;
    size_t off;
  } u64s[] = {
    { OPT_CPU_PERIOD, "cpu-period", offsetof (oci_cpu, period) },
    { OPT_CPU_RT_PERIOD, "cpu-rt-period", offsetof (oci_cpu, realtime_period) },
    { OPT_CPU_SHARE, "cpu-share", offsetof (oci_cpu, shares) },
  };
  static const struct
  {
    int key;
    const char *name;
    size_t off;
  } i64s[] = {
    { OPT_CPU_QUOTA, "cpu-quota", offsetof (oci_cpu, quota) },
    { OPT_CPU_RT_RUNTIME, "cpu-rt-runtime", offsetof (oci_cpu, realtime_runtime) },
  };
  static const struct
  {
    int key;
    const char *name;
    size_t off;
  } mems[] = {
    { OPT_MEMORY, "memory", offsetof (oci_memory, limit) },
    { OPT_MEMORY_SWAP, "memory-swap", offsetof (oci_memory, swap) },
    { OPT_KERNEL_MEMORY, "kernel-memory", offsetof (oci_memory, kernel) },
    { OPT_KERNEL_MEMORY_TCP, "kernel-memory-tcp", offsetof (oci_memory, kernel_tcp) },
    { OPT_MEMORY_RESERVATION, "memory-reservation", offsetof (oci_memory, reservation) },
  };
  int64_t v;

  r->cpu = xmalloc0 (sizeof *r->cpu);
  r->memory = xmalloc0 (sizeof *r->memory);
  r->pids = xmalloc0 (sizeof *r->pids);
  r->block_io = xmalloc0 (sizeof *r->block_io);

  if (V (OPT_BLKIO_WEIGHT))
    {
      if (parse_flag_int (g, "blkio-weight", V (OPT_BLKIO_WEIGHT), &v, true) != 0)
        goto fail;
      r->block_io->weight = (uint16_t)v;
      r->block_io->has_weight = v != 0;
    }
  if (V (OPT_CPUSET_CPUS) && *V (OPT_CPUSET_CPUS))
    r->cpu->cpus = xstrdup (V (OPT_CPUSET_CPUS));
  if (V (OPT_CPUSET_MEMS) && *V (OPT_CPUSET_MEMS))
    r->cpu->mems = xstrdup (V (OPT_CPUSET_MEMS));
  for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++)
    if (V (u64s[i].key) && *V (u64s[i].key))
      {
        uint64_t x = 0;
        if (parse_u64 (g, u64s[i].name, V (u64s[i].key), &x) != 0)
          goto fail;
        *(uint64_t *)((char *)r->cpu + u64s[i].off) = x;
      }
  for (size_t i = 0; i < sizeof i64s / sizeof i64s[0]; i++)
    if (V (i64s[i].key) && *V (i64s[i].key))
      {
        if (parse_i64 (g, i64s[i].name, V (i64s[i].key), &v) != 0)
          goto fail;
        *(int64_t *)((char *)r->cpu + i64s[i].off) = v;
      }
  r->cpu->has_period = r->cpu->period != 0;
  r->cpu->has_realtime_period = r->cpu->realtime_period != 0;
  r->cpu->has_shares = r->cpu->shares != 0;
  r->cpu->has_quota = r->cpu->quota != 0;
  r->cpu->has_realtime_runtime = r->cpu->realtime_runtime != 0;
  for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
    if (V (mems[i].key) && *V (mems[i].key))
      {
        if (parse_ram (g, mems[i].name, V (mems[i].key), &v) != 0)
          goto fail;
        *(int64_t *)((char *)r->memory + mems[i].off) = v;
      }
  r->memory->has_limit = r->memory->limit != 0;
  r->memory->has_swap = r->memory->swap != 0;
  r->memory->has_kernel = r->memory->kernel != 0;
  r->memory->has_kernel_tcp = r->memory->kernel_tcp != 0;
  r->memory->has_reservation = r->memory->reservation != 0;
  if (V (OPT_PIDS_LIMIT))
    {
      if (parse_flag_int (g, "pids-limit", V (OPT_PIDS_LIMIT), &v, false) != 0)
        goto fail;
      r->pids->limit = v;
      r->pids->has_limit = true;
    }
  return r;

fail:
  oci_resources_free (r);
  return NULL;
}

/* runc has no Intel RDT support to offer here unless resctrl is mounted
 * with CAT/MBA; ocirun does not drive resctrl at all. */
static int
check_rdt (struct cli_global *g, const struct update_opts *o)
{
  if (V (OPT_L3_CACHE_SCHEMA) && *V (OPT_L3_CACHE_SCHEMA))
    return cli_error (g, "Intel RDT/CAT: l3 cache schema is not enabled");
  if (V (OPT_MEM_BW_SCHEMA) && *V (OPT_MEM_BW_SCHEMA))
    return cli_error (g, "Intel RDT/MBA: memory bandwidth schema is not enabled");
  return 0;
}

int
cli_cmd_update (struct cli_global *g, int argc, char **argv)
{
  struct update_opts o;
  struct ocirun_context ctx;
  cleanup_error ocirun_error_t err = NULL;
  oci_resources *r = NULL;
  int ret = 0;

  memset (&o, 0, sizeof o);
  o.first_arg = -1;
  if (argp_parse (&update_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "update", o.first_arg < 0 ? 0 : argc - o.first_arg, 1, 1))
    return 1;
  if (cli_init_context (g, &ctx, argv[o.first_arg], &err) < 0)
    return cli_fail (g, &err);

  /* runc: with --resources every other option is ignored. */
  if (o.resources)
    r = resources_from_file (g, o.resources);
  else
    r = resources_from_flags (g, &o);
  if (r == NULL)
    return 1;
  if (!o.resources && check_rdt (g, &o) != 0)
    ret = 1;
  else if (ocirun_container_update (&ctx, r, &err) < 0)
    ret = cli_fail (g, &err);
  oci_resources_free (r);
  return ret;
}
