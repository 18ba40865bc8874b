/* What the command files share: the global options, error reporting as runc
 * does it, and JSON output helpers. */
#ifndef OCIRUN_CLI_H
#define OCIRUN_CLI_H

#include <stdbool.h>
#include <argp.h>
#include <stdio.h>

#include "ocirun.h"

struct cli_global
{
  const char *root;     /* --root, or NULL for the default */
  char *default_root;   /* owned */
  const char *log_file; /* --log */
  enum ocirun_log_format log_format;
  bool debug;
  bool systemd_cgroup;
  const char *rootless; /* "true", "false" or "auto" */
  const char *criu;
  struct ocirun_logger logger;
};

typedef int (*cli_command_fn) (struct cli_global *g, int argc, char **argv);

/* One line per error, where runc puts it: a log line on stderr when there is
 * no --log, else a log line in the file and the bare message on stderr.
 * Both return 1, the exit status. */
int cli_fail (struct cli_global *g, ocirun_error_t *err);
int cli_error (struct cli_global *g, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Whether --rootless (or the auto detection) says rootless. */
bool cli_rootless (struct cli_global *g);

/* Fills ctx from the global options; id may be NULL. Validates the id. */
int cli_init_context (struct cli_global *g, struct ocirun_context *ctx, const char *id, ocirun_error_t *err);

/* Re-indents JSON text the way Go's json.MarshalIndent does (indent per
 * level, `"key": value`, empty containers as {} and []). NULL when the input
 * is not well formed. Caller frees. */
char *cli_json_reindent (const char *json, const char *indent);
/* Writes s to stdout; with_newline adds "\n". Returns 0 or 1 (exit status). */
int cli_print (struct cli_global *g, const char *s, bool with_newline);

/* The criu options checkpoint and restore share, with runc's names: their
 * argp keys, and their parser into req (true when key was one of them). */
enum
{
  CLI_OPT_IMAGE_PATH = 512,
  CLI_OPT_WORK_PATH,
  CLI_OPT_TCP_ESTABLISHED,
  CLI_OPT_EXT_UNIX_SK,
  CLI_OPT_SHELL_JOB,
  CLI_OPT_FILE_LOCKS,
  CLI_OPT_MANAGE_CGROUPS_MODE,
  CLI_OPT_EMPTY_NS,
  CLI_OPT_AUTO_DEDUP,
  CLI_OPT_LAZY_PAGES,
};
bool cli_criu_opt (int key, char *arg, struct ocirun_criu_request *req);

/* Checks the number of positional arguments with runc's messages
 * (`"kill" requires a minimum of 1 argument(s)`); max < 0 means no limit.
 * Returns 0, or 1 after reporting. */
int cli_check_args (struct cli_global *g, const char *cmd, int n, int min, int max);

/* Every command parses with ARGP_IN_ORDER and calls this on ARGP_KEY_ARG:
 * options end at the first positional argument, as with runc (so `exec ID
 * ls -l` and `ps ID -o pid` pass their own dashes through). */
#define CLI_STOP_AT_ARG(state, first_arg)                                                                              \
  do                                                                                                                   \
    {                                                                                                                  \
      *(first_arg) = (state)->next - 1;                                                                                \
      (state)->next = (state)->argc;                                                                                   \
    }                                                                                                                  \
  while (0)

/* argp parse errors exit with this status, as runc's usage errors do. */
#define CLI_USAGE_EXIT 1

/* The options create, run and restore share (create.c). */
struct cli_create_opts
{
  const char *bundle;
  const char *console_socket;
  const char *pid_file;
  bool no_pivot;
  bool no_new_keyring;
  int preserve_fds;
  int first_arg; /* index of the first positional argument, -1 if none */
};
extern const struct argp cli_create_argp; /* input: struct cli_create_opts */
/* Copies the options into ctx; the bundle becomes an absolute path
 * (*bundle_buf owns it). */
int cli_create_opts_apply (const struct cli_create_opts *o, struct ocirun_context *ctx, char **bundle_buf,
                           ocirun_error_t *err);
/* Parses a non-negative decimal integer option value; -1 when invalid. */
int cli_parse_uint (const char *s, long *out);

int cli_cmd_create (struct cli_global *g, int argc, char **argv);
int cli_cmd_start (struct cli_global *g, int argc, char **argv);
int cli_cmd_run (struct cli_global *g, int argc, char **argv);
int cli_cmd_state (struct cli_global *g, int argc, char **argv);
int cli_cmd_kill (struct cli_global *g, int argc, char **argv);
int cli_cmd_delete (struct cli_global *g, int argc, char **argv);
int cli_cmd_list (struct cli_global *g, int argc, char **argv);
int cli_cmd_ps (struct cli_global *g, int argc, char **argv);
int cli_cmd_exec (struct cli_global *g, int argc, char **argv);
int cli_cmd_pause (struct cli_global *g, int argc, char **argv);
int cli_cmd_resume (struct cli_global *g, int argc, char **argv);
int cli_cmd_update (struct cli_global *g, int argc, char **argv);
int cli_cmd_events (struct cli_global *g, int argc, char **argv);
int cli_cmd_spec (struct cli_global *g, int argc, char **argv);
int cli_cmd_features (struct cli_global *g, int argc, char **argv);
int cli_cmd_checkpoint (struct cli_global *g, int argc, char **argv);
int cli_cmd_restore (struct cli_global *g, int argc, char **argv);
int cli_cmd_check (struct cli_global *g, int argc, char **argv);

#endif
