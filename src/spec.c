#include "config.h"
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

struct spec_opts
{
  const char *bundle;
  bool rootless;
  int first_arg;
};

enum
{
  OPT_ROOTLESS = 256,
};

static struct argp_option options[] = {
  { "bundle", 'b', "DIR", 0, "path to the root of the bundle directory", 0 },
  { "rootless", OPT_ROOTLESS, NULL, 0, "generate a configuration for a rootless container", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct spec_opts *o = state->input;

  switch (key)
    {
    case 'b':
      o->bundle = arg;
      break;
    case OPT_ROOTLESS:
      o->rootless = true;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp spec_argp
    = { options,
        parse_opt,
        "",
        "Create a new config.json (the default configuration) in the bundle directory; an existing one is never "
        "overwritten.",
        NULL,
        NULL,
        NULL };

int
cli_cmd_spec (struct cli_global *g, int argc, char **argv)
{
  struct spec_opts o = { NULL, false, -1 };
  cleanup_close int dirfd = -1;
  cleanup_close int fd = -1;
  cleanup_free char *json = NULL;
  cleanup_free char *pretty = NULL;
  oci_config *spec;
  size_t len = 0;

  if (argp_parse (&spec_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "spec", o.first_arg < 0 ? 0 : argc - o.first_arg, 0, 0))
    return 1;

  dirfd = open (o.bundle ? o.bundle : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return cli_error (g, "open bundle `%s`: %s", o.bundle ? o.bundle : ".", strerror (errno));

  spec = ocirun_default_spec (o.rootless);
  if (spec == NULL)
    return cli_error (g, "cannot build the default configuration");
  json = oci_config_to_json (spec, 0, &len);
  oci_config_free (spec);
  /* runc writes json.MarshalIndent(spec, "", "\t"), no final newline. */
  if (json == NULL || (pretty = cli_json_reindent (json, "\t")) == NULL)
    return cli_error (g, "cannot serialise the default configuration");

  /* O_EXCL: never replace a config someone wrote, even one that appears
   * between a check and the write. */
  fd = openat (dirfd, "config.json", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0 && errno == EEXIST)
    return cli_error (g, "File config.json exists. Remove it first");
  if (fd < 0)
    return cli_error (g, "create config.json: %s", strerror (errno));
  if (ocirun_write_all (fd, pretty, strlen (pretty)) < 0)
    return cli_error (g, "write config.json: %s", strerror (errno));
  return 0;
}
