#include "config.h"
#include "cli.h"
#include "util.h"

#include <string.h>

struct list_opts
{
  const char *format;
  bool quiet;
  int first_arg;
};

static struct argp_option options[] = {
  { "format", 'f', "FORMAT", 0, "select one of: table or json (default: \"table\")", 0 },
  { "quiet", 'q', NULL, 0, "display only container IDs", 0 },
  { NULL, 0, NULL, 0, NULL, 0 },
};

static error_t
parse_opt (int key, char *arg, struct argp_state *state)
{
  struct list_opts *o = state->input;

  switch (key)
    {
    case 'f':
      o->format = arg;
      break;
    case 'q':
      o->quiet = true;
      break;
    case ARGP_KEY_ARG:
      CLI_STOP_AT_ARG (state, &o->first_arg);
      break;
    default:
      return ARGP_ERR_UNKNOWN;
    }
  return 0;
}

static const struct argp list_argp
    = { options, parse_opt, "", "List the containers under the state root.", NULL, NULL, NULL };

/* runc prints through Go's tabwriter (minwidth 12, padding 3): every column
 * but the last is as wide as its widest cell plus 3, at least 12. */
#define N_COLS 6

static void
print_table (const struct ocirun_list *l)
{
  static const char *const header[N_COLS] = { "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER" };
  size_t width[N_COLS];
  char ***rows = xmalloc0 ((l->len + 1) * sizeof (char **));

  rows[0] = xmalloc0 (N_COLS * sizeof (char *));
  for (int c = 0; c < N_COLS; c++)
    rows[0][c] = xstrdup (header[c]);
  for (size_t i = 0; i < l->len; i++)
    {
      const oci_runc_state *s = l->items[i];
      char **r = rows[i + 1] = xmalloc0 (N_COLS * sizeof (char *));
      r[0] = xstrdup (s->id);
      xasprintf (&r[1], "%d", (int)s->pid);
      r[2] = xstrdup (s->status);
      r[3] = xstrdup (s->bundle);
      r[4] = xstrdup (s->created);
      r[5] = xstrdup (s->owner ? s->owner : "");
    }

  for (int c = 0; c < N_COLS; c++)
    {
      width[c] = 12;
      for (size_t i = 0; i <= l->len; i++)
        if (strlen (rows[i][c]) + 3 > width[c])
          width[c] = strlen (rows[i][c]) + 3;
    }

  for (size_t i = 0; i <= l->len; i++)
    {
      for (int c = 0; c < N_COLS - 1; c++)
        printf ("%-*s", (int)width[c], rows[i][c]);
      printf ("%s\n", rows[i][N_COLS - 1]);
      for (int c = 0; c < N_COLS; c++)
        free (rows[i][c]);
      free (rows[i]);
    }
  free (rows);
}

static int
print_json (struct cli_global *g, const struct ocirun_list *l)
{
  /* json.Encoder output, as runc: compact, one line, `null` when empty. */
  if (l->len == 0)
    return cli_print (g, "null", true);
  putchar ('[');
  for (size_t i = 0; i < l->len; i++)
    {
      size_t len = 0;
      cleanup_free char *s = oci_runc_state_to_json (l->items[i], 0, &len);
      if (s == NULL)
        return cli_error (g, "cannot serialise the state of `%s`", l->items[i]->id);
      if (i)
        putchar (',');
      fwrite (s, 1, len, stdout);
    }
  return cli_print (g, "]", true);
}

int
cli_cmd_list (struct cli_global *g, int argc, char **argv)
{
  struct list_opts o = { "table", false, -1 };
  struct ocirun_context ctx;
  struct ocirun_list l = { NULL, 0 };
  cleanup_error ocirun_error_t err = NULL;
  int ret = 0;

  if (argp_parse (&list_argp, argc, argv, ARGP_IN_ORDER, NULL, &o) != 0)
    return CLI_USAGE_EXIT;
  if (cli_check_args (g, "list", o.first_arg < 0 ? 0 : argc - o.first_arg, 0, 0))
    return 1;
  if (!o.quiet && strcmp (o.format, "table") != 0 && strcmp (o.format, "json") != 0)
    return cli_error (g, "invalid format option");

  if (cli_init_context (g, &ctx, NULL, &err) < 0 || ocirun_container_list (&ctx, &l, &err) < 0)
    return cli_fail (g, &err);

  if (o.quiet)
    {
      for (size_t i = 0; i < l.len; i++)
        printf ("%s\n", l.items[i]->id);
      ret = cli_print (g, "", false);
    }
  else if (strcmp (o.format, "json") == 0)
    ret = print_json (g, &l);
  else
    {
      print_table (&l);
      ret = cli_print (g, "", false);
    }
  ocirun_list_free (&l);
  return ret;
}
