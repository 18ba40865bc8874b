/* libocispec: round trips of a config using every field of the schema,
 * typed field access, and the exact error messages of the parser. */
#define _GNU_SOURCE
/* To walk the generated tables and prove the fixture uses every field.  */
#define OCISPEC_INTERNAL 1
#include "ocispec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#ifndef FIXTURES_DIR
#error "FIXTURES_DIR must be defined"
#endif

static char *
read_text (const char *path, size_t *len)
{
  FILE *f = fopen (path, "re");
  char *s = NULL;
  size_t cap = 0;
  ssize_t n;

  if (f == NULL)
    return NULL;
  n = getdelim (&s, &cap, '\0', f);
  fclose (f);
  if (n < 0)
    {
      free (s);
      return NULL;
    }
  *len = n;
  return s;
}

static void
print_errors (const ocispec_errors *e)
{
  for (size_t i = 0; i < e->len; i++)
    fprintf (stderr, "  error: %s\n", e->msgs[i]);
}

/* ---- coverage: which (type, field) pairs the fixture sets ---- */

#define MAX_TYPES 128
static const struct ocispec_type *cov_types[MAX_TYPES];
static bool *cov_seen[MAX_TYPES];
static size_t cov_n;

static bool *
cov_slot (const struct ocispec_type *t)
{
  for (size_t i = 0; i < cov_n; i++)
    if (cov_types[i] == t)
      return cov_seen[i];
  if (cov_n == MAX_TYPES)
    abort ();
  cov_types[cov_n] = t;
  cov_seen[cov_n] = calloc (t->n_fields + 1, sizeof (bool));
  return cov_seen[cov_n++];
}

static void
cov_walk (const struct ocispec_type *t, const char *obj)
{
  bool *seen = cov_slot (t);

  if (obj == NULL)
    return;
  for (size_t i = 0; i < t->n_fields; i++)
    {
      const struct ocispec_field *f = &t->fields[i];
      const char *p = obj + f->offset;
      switch (f->kind)
        {
        case OCISPEC_KIND_STRING:
          seen[i] |= *(char *const *)p != NULL;
          break;
        case OCISPEC_KIND_OBJECT:
          seen[i] |= *(char *const *)p != NULL;
          if (*(char *const *)p)
            cov_walk (f->type, *(char *const *)p);
          else
            cov_slot (f->type);
          break;
        case OCISPEC_KIND_ARRAY:
          {
            size_t len = *(const size_t *)(obj + f->len_offset);
            /* An empty array does not show the element type is handled.  */
            seen[i] |= len > 0;
            if (f->elem_kind == OCISPEC_KIND_OBJECT)
              {
                cov_slot (f->type);
                for (size_t j = 0; j < len; j++)
                  cov_walk (f->type, (*(char **const *)p)[j]);
              }
          }
          break;
        case OCISPEC_KIND_MAP:
          {
            const oci_map_string *m = *(oci_map_string *const *)p;
            seen[i] |= m != NULL && m->len > 0;
            if (f->elem_kind == OCISPEC_KIND_OBJECT)
              {
                cov_slot (f->type);
                for (size_t j = 0; m && j < m->len; j++)
                  cov_walk (f->type, (const char *)m->values[j]);
              }
          }
          break;
        default:
          seen[i] |= *(const bool *)(obj + f->has_offset);
          break;
        }
    }
}

static void
test_fixture_uses_every_field (const oci_config *c)
{
  cov_walk (&ocispec_type_config, (const char *)c);
  for (size_t i = 0; i < cov_n; i++)
    {
      for (size_t j = 0; j < cov_types[i]->n_fields; j++)
        {
          if (!cov_seen[i][j])
            fprintf (stderr, "full-config.json does not set %s.%s\n", cov_types[i]->name,
                     cov_types[i]->fields[j].json_name);
          CHECK (cov_seen[i][j]);
        }
      free (cov_seen[i]);
    }
  /* Every type reachable from config.  */
  CHECK (cov_n == 37);
}

/* ---- round trips ---- */

static void
test_full_config (void)
{
  ocispec_errors errs = { 0 };
  size_t flen = 0, len1 = 0, len2 = 0, clen = 0, clen2 = 0;
  char *fixture = read_text (FIXTURES_DIR "/full-config.json", &flen);
  oci_config *c, *c2, *c3;
  char *pretty1, *pretty2, *compact, *compact2;

  CHECK (fixture != NULL);
  if (fixture == NULL)
    return;

  c = oci_config_parse_file (FIXTURES_DIR "/full-config.json", &errs);
  CHECK (c != NULL);
  CHECK (errs.len == 0);
  print_errors (&errs);
  if (c == NULL)
    {
      free (fixture);
      return;
    }

  /* The fixture is written in schema order with tabs (by Python's json
     module), so the pretty output must be the same bytes.  */
  pretty1 = oci_config_to_json (c, OCISPEC_JSON_PRETTY, &len1);
  CHECK (pretty1 != NULL);
  CHECK (len1 == strlen (pretty1));
  if (flen > 0 && fixture[flen - 1] == '\n')
    fixture[--flen] = '\0';
  CHECK_STREQ (pretty1, fixture);

  /* parse -> to_json -> parse -> to_json gives the same text.  */
  c2 = oci_config_parse_data (pretty1, len1, &errs);
  CHECK (c2 != NULL);
  pretty2 = c2 ? oci_config_to_json (c2, OCISPEC_JSON_PRETTY, &len2) : NULL;
  CHECK_STREQ (pretty2, pretty1);

  /* The compact form holds the same document.  */
  compact = oci_config_to_json (c, 0, &clen);
  CHECK (compact != NULL && strchr (compact, '\n') == NULL && strchr (compact, '\t') == NULL);
  CHECK (compact != NULL && strstr (compact, "\"ociVersion\":\"1.3.0\"") != NULL);
  c3 = compact ? oci_config_parse_data (compact, clen, &errs) : NULL;
  CHECK (c3 != NULL);
  compact2 = c3 ? oci_config_to_json (c3, 0, &clen2) : NULL;
  CHECK_STREQ (compact2, compact);
  CHECK (errs.len == 0);
  print_errors (&errs);

  test_fixture_uses_every_field (c);

  /* Typed access to what the fixture says.  */
  CHECK_STREQ (c->oci_version, "1.3.0");
  CHECK (c->process->terminal && c->process->has_terminal);
  CHECK (c->process->console_size->height == 25 && c->process->console_size->width == 80);
  CHECK (c->process->user->uid == 1000 && c->process->user->has_uid);
  CHECK (c->process->user->umask == 18 && c->process->user->has_umask);
  CHECK (c->process->user->additional_gids_len == 3);
  CHECK (c->process->user->additional_gids[2] == UINT32_MAX);
  CHECK (c->process->args_len == 3);
  CHECK_STREQ (c->process->args[2], "echo \"hello\" \\ world");
  CHECK (c->process->args[3] == NULL); /* NULL-terminated for execve */
  CHECK (c->process->env[c->process->env_len] == NULL);
  CHECK (c->process->capabilities->inheritable_len == 1 && c->process->capabilities->inheritable[1] == NULL);
  CHECK (c->process->rlimits_len == 2 && c->process->rlimits[2] == NULL);
  CHECK (c->process->rlimits[1]->hard == UINT64_MAX);
  CHECK (c->process->rlimits[1]->soft == (uint64_t)INT64_MAX + 1);
  CHECK (c->process->oom_score_adj == -500 && c->process->has_oom_score_adj);
  CHECK (c->process->scheduler->nice == -5);
  CHECK (c->process->scheduler->priority == 0 && c->process->scheduler->has_priority);
  CHECK_STREQ (c->process->exec_cpu_affinity->initial, "0-3,7");
  CHECK (c->root->readonly && c->root->has_readonly);
  CHECK (c->mounts_len == 4 && c->mounts[4] == NULL);
  CHECK (c->mounts[0]->options == NULL && !c->mounts[0]->has_options);
  CHECK (c->mounts[3]->has_options && c->mounts[3]->options_len == 0);
  CHECK (c->mounts[2]->gid_mappings[1]->container_id == 65536);
  CHECK (c->hooks->create_runtime_len == 2 && c->hooks->create_runtime[1]->args == NULL);
  CHECK (c->hooks->poststop[0]->timeout == 5);
  CHECK_STREQ (oci_map_string_get (c->annotations, "com.example.quote"), "say \"hi\"\tnow\n");
  CHECK_STREQ (oci_map_string_get (c->annotations, ""), "empty key");
  CHECK (oci_map_string_get (c->annotations, "missing") == NULL);
  CHECK (oci_map_string_get (NULL, "x") == NULL);
  CHECK_STREQ (c->annotations->keys[0], "org.opencontainers.image.title");

  oci_linux *l = c->linux;
  CHECK (l->namespaces_len == 8);
  CHECK_STREQ (l->namespaces[1]->path, "/var/run/netns/test");
  CHECK (oci_map_time_offset_get (l->time_offsets, "monotonic")->secs == -100);
  CHECK (oci_map_time_offset_get (l->time_offsets, "boottime")->secs == INT64_MAX);
  CHECK (oci_map_net_device_get (l->net_devices, "dummy0") != NULL
         && oci_map_net_device_get (l->net_devices, "dummy0")->name == NULL);
  CHECK (l->devices[0]->file_mode == 0666);
  CHECK (l->resources->devices[0]->has_allow && !l->resources->devices[0]->allow);
  CHECK (l->resources->devices[2]->major == -1);
  CHECK (l->resources->memory->limit == 536870912 && l->resources->memory->has_limit);
  CHECK (l->resources->memory->kernel_tcp == 67108864);
  CHECK (l->resources->memory->has_disable_oom_killer && !l->resources->memory->disable_oom_killer);
  CHECK (l->resources->cpu->realtime_runtime == INT64_MIN);
  CHECK (l->resources->pids->limit == -1);
  CHECK (l->resources->block_io->weight == 500);
  CHECK (l->resources->block_io->weight_device[0]->weight == 65535);
  CHECK (!l->resources->block_io->weight_device[1]->has_weight);
  CHECK (l->resources->block_io->throttle_read_iops_device[0]->rate == 1000);
  CHECK (l->resources->block_io->throttle_write_bps_device[0]->rate == UINT64_MAX);
  CHECK (l->resources->network->class_id == 1048577);
  CHECK (oci_map_rdma_get (l->resources->rdma, "mlx5_1")->hca_objects == 10000);
  CHECK (!oci_map_rdma_get (l->resources->rdma, "mlx4_0")->has_hca_handles);
  CHECK_STREQ (oci_map_string_get (l->resources->unified, "io.weight"), "default 100");
  CHECK_STREQ (l->intel_rdt->l3_cache_schema, "L3:0=7f0;1=1f");
  CHECK (l->intel_rdt->enable_cmt && l->intel_rdt->has_enable_mbm && !l->intel_rdt->enable_mbm);
  CHECK_STREQ (oci_map_string_get (l->sysctl, "net.ipv4.ip_forward"), "1");
  CHECK (l->seccomp->syscalls[2]->args[0]->value == UINT64_MAX);
  CHECK (l->seccomp->syscalls[2]->args[0]->value_two == (uint64_t)INT64_MAX + 1);
  CHECK (l->seccomp->syscalls[1]->args[1]->index == 0 && l->seccomp->syscalls[1]->args[1]->has_index);
  CHECK (l->personality->flags_len == 1 && l->personality->flags[1] == NULL);
  CHECK_STREQ (l->memory_policy->flags[0], "MPOL_F_STATIC_NODES");

  /* uint64 above INT64_MAX is written exactly.  */
  CHECK (strstr (compact, "\"hard\":18446744073709551615") != NULL);
  CHECK (strstr (compact, "\"valueTwo\":9223372036854775808") != NULL);
  CHECK (strstr (compact, "\"realtimeRuntime\":-9223372036854775808") != NULL);

  oci_config_free (c);
  oci_config_free (c2);
  oci_config_free (c3);
  free (pretty1);
  free (pretty2);
  free (compact);
  free (compact2);
  free (fixture);
  ocispec_errors_free (&errs);
}

/* ---- error messages ---- */

typedef void *(*parse_fn) (const char *data, size_t len, ocispec_errors *errs);

static void
free_config (void *p)
{
  oci_config_free (p);
}

/* Parses json with fn and checks the errors are exactly the NULL-terminated
 * list given (none: the parse must succeed). */
static void
expect_errors_fn (int line, parse_fn fn, void (*free_fn) (void *), const char *json, ...)
{
  ocispec_errors errs = { 0 };
  const char *want[32];
  size_t n = 0;
  va_list ap;
  void *v;
  bool ok;

  va_start (ap, json);
  while (n < 32 && (want[n] = va_arg (ap, const char *)) != NULL)
    n++;
  va_end (ap);

  errno = 0;
  v = fn (json, strlen (json), &errs);
  ok = (n == 0) == (v != NULL) && errs.len == n;
  for (size_t i = 0; ok && i < n; i++)
    ok = strcmp (errs.msgs[i], want[i]) == 0;
  if (n > 0)
    ok = ok && errno == EINVAL;
  unit_checks++;
  if (!ok)
    {
      unit_failures++;
      fprintf (stderr, "%s:%d: unexpected parse result for %.200s\n  got %s and:\n", __FILE__, line, json,
               v ? "a value" : "NULL");
      print_errors (&errs);
      for (size_t i = 0; i < n; i++)
        fprintf (stderr, "  want:  %s\n", want[i]);
    }
  if (v)
    free_fn (v);
  ocispec_errors_free (&errs);
  CHECK (errs.msgs == NULL && errs.len == 0);
}

#define EXPECT_CONFIG(json, ...)                                                                                       \
  expect_errors_fn (__LINE__, (parse_fn)oci_config_parse_data, free_config, json, __VA_ARGS__, NULL)
#define CONFIG_OK(json) expect_errors_fn (__LINE__, (parse_fn)oci_config_parse_data, free_config, json, NULL)

#define MIN "\"ociVersion\":\"1.3.0\""
#define PROC(user) "{" MIN ",\"process\":{\"cwd\":\"/\",\"user\":" user "}}"
#define MEM(field) "{" MIN ",\"linux\":{\"resources\":{\"memory\":{" field "}}}}"

static void
test_errors (void)
{
  CONFIG_OK ("{" MIN "}");
  CONFIG_OK (" {" MIN ", \"unknown\": {\"deep\": [1, {\"x\": null}]}, \"linux\": {\"unknownToo\": 5}} \n");

  /* Wrong types name the path and quote what was there.  */
  EXPECT_CONFIG (PROC ("{\"uid\":\"abc\",\"gid\":0}"),
                 "process.user.uid: expected an unsigned 32-bit integer, got \"abc\"");
  EXPECT_CONFIG ("{" MIN ",\"linux\":{\"namespaces\":[{\"type\":\"pid\"},5]}}",
                 "linux.namespaces[1]: expected an object, got 5");
  EXPECT_CONFIG ("{" MIN ",\"linux\":{\"namespaces\":{\"type\":\"pid\"}}}",
                 "linux.namespaces: expected an array, got an object");
  EXPECT_CONFIG ("{" MIN ",\"hostname\":[\"a\"]}", "hostname: expected a string, got an array");
  EXPECT_CONFIG ("{" MIN ",\"root\":{\"path\":\"r\",\"readonly\":\"yes\"}}",
                 "root.readonly: expected a boolean, got \"yes\"");
  EXPECT_CONFIG ("{" MIN ",\"root\":{\"path\":\"r\",\"readonly\":1}}", "root.readonly: expected a boolean, got 1");
  EXPECT_CONFIG ("{" MIN ",\"process\":{\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"sh\",7,null]}}",
                 "process.args[1]: expected a string, got 7", "process.args[2]: expected a string, got null");
  EXPECT_CONFIG ("{" MIN ",\"annotations\":{\"a\":\"1\",\"b.c\":2,\"d e\":true}}",
                 "annotations[\"b.c\"]: expected a string, got 2", "annotations[\"d e\"]: expected a string, got true");
  EXPECT_CONFIG ("{" MIN ",\"annotations\":[]}", "annotations: expected an object, got an array");
  EXPECT_CONFIG ("{" MIN ",\"linux\":{\"timeOffsets\":{\"monotonic\":{\"secs\":1.5}}}}",
                 "linux.timeOffsets.monotonic.secs: expected a 64-bit integer, got 1.5");
  EXPECT_CONFIG ("{" MIN ",\"linux\":{\"resources\":{\"rdma\":{\"mlx5\":{\"hcaHandles\":-1}}}}}",
                 "linux.resources.rdma.mlx5.hcaHandles: expected an unsigned 32-bit integer, got -1");
  EXPECT_CONFIG ("5", "(root): expected an object, got 5");
  EXPECT_CONFIG ("null", "(root): expected an object, got null");
  EXPECT_CONFIG ("\"x\"", "(root): expected an object, got \"x\"");

  /* Long strings are cut in the message, not in the middle of a character.  */
  EXPECT_CONFIG ("{" MIN ",\"root\":{\"path\":\"r\",\"readonly\":"
                 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\xc3\xa9\"}}",
                 "root.readonly: expected a boolean, got "
                 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9...\"");
  EXPECT_CONFIG ("{" MIN ",\"hostname\":{\"a\":1}}", "hostname: expected a string, got an object");

  /* Integer ranges, each limit from both sides.  */
  CONFIG_OK (PROC ("{\"uid\":4294967295,\"gid\":0}"));
  EXPECT_CONFIG (PROC ("{\"uid\":4294967296,\"gid\":0}"),
                 "process.user.uid: expected an unsigned 32-bit integer, got 4294967296");
  EXPECT_CONFIG (PROC ("{\"uid\":-1,\"gid\":0}"), "process.user.uid: expected an unsigned 32-bit integer, got -1");
  EXPECT_CONFIG (PROC ("{\"uid\":-0,\"gid\":0}"), "process.user.uid: expected an unsigned 32-bit integer, got -0");
  EXPECT_CONFIG (PROC ("{\"uid\":1.0,\"gid\":0}"), "process.user.uid: expected an unsigned 32-bit integer, got 1.0");
  EXPECT_CONFIG (PROC ("{\"uid\":1e3,\"gid\":0}"), "process.user.uid: expected an unsigned 32-bit integer, got 1e3");
  EXPECT_CONFIG (PROC ("{\"uid\":0,\"gid\":0,\"additionalGids\":[1,-2,3.5]}"),
                 "process.user.additionalGids[1]: expected an unsigned 32-bit integer, got -2",
                 "process.user.additionalGids[2]: expected an unsigned 32-bit integer, got 3.5");
  CONFIG_OK ("{" MIN ",\"process\":{\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},\"oomScoreAdj\":-2147483648}}");
  CONFIG_OK ("{" MIN ",\"process\":{\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},\"oomScoreAdj\":2147483647}}");
  EXPECT_CONFIG ("{" MIN ",\"process\":{\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},\"oomScoreAdj\":-2147483649}}",
                 "process.oomScoreAdj: expected a 32-bit integer, got -2147483649");
  EXPECT_CONFIG ("{" MIN ",\"process\":{\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},\"oomScoreAdj\":2147483648}}",
                 "process.oomScoreAdj: expected a 32-bit integer, got 2147483648");
  CONFIG_OK (MEM ("\"limit\":9223372036854775807,\"swap\":-9223372036854775808"));
  EXPECT_CONFIG (MEM ("\"limit\":9223372036854775808"),
                 "linux.resources.memory.limit: expected a 64-bit integer, got 9223372036854775808");
  EXPECT_CONFIG (MEM ("\"swap\":-9223372036854775809"),
                 "linux.resources.memory.swap: expected a 64-bit integer, got -9223372036854775809");
  CONFIG_OK (MEM ("\"swappiness\":18446744073709551615"));
  EXPECT_CONFIG (MEM ("\"swappiness\":18446744073709551616"),
                 "linux.resources.memory.swappiness: expected an unsigned 64-bit integer, got 18446744073709551616");
  EXPECT_CONFIG (MEM ("\"swappiness\":-1"),
                 "linux.resources.memory.swappiness: expected an unsigned 64-bit integer, got -1");
  EXPECT_CONFIG (
      MEM ("\"swappiness\":99999999999999999999999999"),
      "linux.resources.memory.swappiness: expected an unsigned 64-bit integer, got 99999999999999999999999999");
  CONFIG_OK ("{" MIN ",\"linux\":{\"resources\":{\"blockIO\":{\"weight\":65535}}}}");
  EXPECT_CONFIG ("{" MIN ",\"linux\":{\"resources\":{\"blockIO\":{\"weight\":65536,\"leafWeight\":-1}}}}",
                 "linux.resources.blockIO.weight: expected an unsigned 16-bit integer, got 65536",
                 "linux.resources.blockIO.leafWeight: expected an unsigned 16-bit integer, got -1");

  /* Required fields.  */
  EXPECT_CONFIG ("{}", "ociVersion: required field is missing");
  EXPECT_CONFIG ("{" MIN ",\"mounts\":[{\"destination\":\"/a\"},{\"destination\":\"/b\"},{\"type\":\"tmpfs\"}]}",
                 "mounts[2].destination: required field is missing");
  EXPECT_CONFIG ("{" MIN ",\"process\":{}}", "process.user: required field is missing",
                 "process.cwd: required field is missing");
  EXPECT_CONFIG ("{" MIN ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{}]}}}",
                 "linux.seccomp.syscalls[0].names: required field is missing",
                 "linux.seccomp.syscalls[0].action: required field is missing");
  /* null is "absent" for optional fields, and wrong for required ones.  */
  CONFIG_OK ("{" MIN ",\"process\":null,\"hostname\":null,\"mounts\":null,\"annotations\":null,\"linux\":null}");
  EXPECT_CONFIG ("{\"ociVersion\":null}", "ociVersion: expected a string, got null");

  /* Syntax errors: one message, one line.  */
  EXPECT_CONFIG ("", "invalid JSON: premature EOF (at byte 0)");
  EXPECT_CONFIG ("{" MIN ",}", "invalid JSON: invalid object key (must be a string) (at byte 23)");
  EXPECT_CONFIG ("{" MIN "} x", "invalid JSON: trailing garbage (at byte 24)");
  EXPECT_CONFIG ("{" MIN, "invalid JSON: premature EOF (at byte 21)");
  EXPECT_CONFIG ("{\"ociVersion\":\"\xff\"}",
                 "invalid JSON: lexical error: invalid bytes in UTF8 string. (at byte 16)");
  EXPECT_CONFIG (
      "{/* c */" MIN "}",
      "invalid JSON: lexical error: probable comment found in input text, comments are not enabled. (at byte 1)");
  EXPECT_CONFIG ("{\"ociVersion\":\"a\\u0000b\"}", "ociVersion: string contains a NUL character");
  {
    /* Deep nesting is refused, not a stack overflow.  */
    size_t depth = 100000;
    char *deep = malloc (2 * depth + 1);
    memset (deep, '[', depth);
    memset (deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    EXPECT_CONFIG (deep, "invalid JSON: nested deeper than 1000 levels (at byte 1001)");
    free (deep);
  }

  /* Every mistake of a bad config is reported, in document order, with the
     missing required fields of an object after its other problems.  */
  EXPECT_CONFIG (
      "{\"process\":{\"user\":{\"uid\":\"root\",\"gid\":-5},\"args\":\"sh\",\"terminal\":\"no\"},"
      "\"mounts\":[{\"destination\":\"/proc\"},{\"source\":\"x\",\"options\":[1]}],"
      "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},\"net\"],\"resources\":{\"memory\":{\"limit\":1.5},"
      "\"pids\":{\"limit\":\"max\"}},\"sysctl\":{\"a\":1},\"uidMappings\":[{\"containerID\":0,\"size\":1}]}}",
      "process.user.uid: expected an unsigned 32-bit integer, got \"root\"",
      "process.user.gid: expected an unsigned 32-bit integer, got -5", "process.args: expected an array, got \"sh\"",
      "process.terminal: expected a boolean, got \"no\"", "process.cwd: required field is missing",
      "mounts[1].options[0]: expected a string, got 1", "mounts[1].destination: required field is missing",
      "linux.namespaces[1]: expected an object, got \"net\"",
      "linux.resources.memory.limit: expected a 64-bit integer, got 1.5",
      "linux.resources.pids.limit: expected a 64-bit integer, got \"max\"", "linux.sysctl.a: expected a string, got 1",
      "linux.uidMappings[0].hostID: required field is missing", "ociVersion: required field is missing");
}

/* ---- smaller behaviours ---- */

static void
test_parse_file_errors (void)
{
  ocispec_errors errs = { 0 };
  oci_config *c;
  char dir[] = "/tmp/test-ocispec-XXXXXX";
  char path[64];
  int fd;

  errno = 0;
  c = oci_config_parse_file ("/nonexistent/config.json", &errs);
  CHECK (c == NULL && errno == ENOENT);
  CHECK (errs.len == 1);
  if (errs.len == 1)
    CHECK_STREQ (errs.msgs[0], "open `/nonexistent/config.json`: No such file or directory");
  ocispec_errors_free (&errs);

  CHECK (mkdtemp (dir) != NULL);
  c = oci_config_parse_file (dir, &errs);
  CHECK (c == NULL && errno == EISDIR && errs.len == 1);
  ocispec_errors_free (&errs);

  snprintf (path, sizeof path, "%s/config.json", dir);
  fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  CHECK (fd >= 0);
  CHECK (write (fd, "{\"ociVersion\": 1}", 17) == 17);
  close (fd);
  c = oci_config_parse_file (path, &errs);
  CHECK (c == NULL && errno == EINVAL && errs.len == 1);
  if (errs.len == 1)
    CHECK_STREQ (errs.msgs[0], "ociVersion: expected a string, got 1");
  ocispec_errors_free (&errs);

  /* errs may be NULL when the caller does not want the messages.  */
  CHECK (oci_config_parse_file (path, NULL) == NULL);
  CHECK (oci_config_parse_data ("{}", 2, NULL) == NULL);
  unlink (path);
  rmdir (dir);
}

static char *
config_json (const char *json, unsigned flags)
{
  ocispec_errors errs = { 0 };
  oci_config *c = oci_config_parse_data (json, strlen (json), &errs);
  char *out;

  print_errors (&errs);
  ocispec_errors_free (&errs);
  if (c == NULL)
    return NULL;
  out = oci_config_to_json (c, flags, NULL);
  oci_config_free (c);
  return out;
}

static void
check_normalises (int line, const char *in, const char *want)
{
  char *got = config_json (in, 0);
  unit_checks++;
  if (got == NULL || strcmp (got, want) != 0)
    {
      unit_failures++;
      fprintf (stderr, "%s:%d: %s\n  became:   %s\n  expected: %s\n", __FILE__, line, in, got ? got : "(null)", want);
    }
  free (got);
}
#define NORMALISES(in, want) check_normalises (__LINE__, in, want)
/* U+FFFD */
#define R "\xef\xbf\xbd"

static void
test_serialise (void)
{
  /* Schema order, absent fields left out, empty arrays and maps kept.  */
  NORMALISES ("{\"hostname\":\"h\",\"ociVersion\":\"1\",\"unknown\":1,\"annotations\":{},\"mounts\":[]}",
              "{\"ociVersion\":\"1\",\"hostname\":\"h\",\"mounts\":[],\"annotations\":{}}");
  /* Repeated keys: the last wins; in a map it keeps the first one's place.  */
  NORMALISES ("{\"ociVersion\":\"1\",\"ociVersion\":\"2\",\"annotations\":{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\"}}",
              "{\"ociVersion\":\"2\",\"annotations\":{\"a\":\"3\",\"b\":\"2\"}}");
  NORMALISES ("{\"ociVersion\":\"1\",\"hostname\":\"h\",\"hostname\":null}", "{\"ociVersion\":\"1\"}");
  /* Escapes come out in their short forms.  */
  NORMALISES ("{\"ociVersion\":\"\\u0041\\/\\b\\f\\n\\r\\t\\u001b\\\"\\\\\\u00e9\\ud83d\\ude00\"}",
              "{\"ociVersion\":\"A/\\b\\f\\n\\r\\t\\u001b\\\"\\\\\xc3\xa9\xf0\x9f\x98\x80\"}");

  /* What yajl lets through but is not UTF-8 becomes U+FFFD, byte by byte:
     an overlong NUL, a surrogate (raw and escaped), beyond U+10FFFF.  */
  NORMALISES ("{\"ociVersion\":\"a\xc0\x80"
              "b\xed\xa0\x80"
              "c\\udc00"
              "d\xf5\x80\x80\x80\"}",
              "{\"ociVersion\":\"a" R R "b" R R R "c" R R R "d" R R R R "\"}");
  NORMALISES ("{\"ociVersion\":\"1\",\"annotations\":{\"k\xed\xa0\x80\":\"v\"}}",
              "{\"ociVersion\":\"1\",\"annotations\":{\"k" R R R "\":\"v\"}}");

  /* Pretty output looks like `runc spec`'s.  */
  {
    char *got = config_json ("{\"ociVersion\":\"1\",\"process\":{\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},"
                             "\"args\":[\"sh\"],\"env\":[]},\"annotations\":{}}",
                             OCISPEC_JSON_PRETTY);
    CHECK_STREQ (got, "{\n"
                      "\t\"ociVersion\": \"1\",\n"
                      "\t\"process\": {\n"
                      "\t\t\"user\": {\n"
                      "\t\t\t\"uid\": 0,\n"
                      "\t\t\t\"gid\": 0\n"
                      "\t\t},\n"
                      "\t\t\"args\": [\n"
                      "\t\t\t\"sh\"\n"
                      "\t\t],\n"
                      "\t\t\"env\": [],\n"
                      "\t\t\"cwd\": \"/\"\n"
                      "\t},\n"
                      "\t\"annotations\": {}\n"
                      "}");
    free (got);
  }

  /* Structs built in code: has_x marks presence; a set value without it
     still goes out, a required number always does; bad UTF-8 is replaced. */
  {
    oci_state *st = calloc (1, sizeof (*st));
    char *got;
    size_t len = 0;
    ocispec_errors errs = { 0 };

    st->oci_version = strdup ("1.3.0");
    st->id = strdup ("c\xff\xfe");
    st->status = strdup ("running");
    st->bundle = strdup ("/b");
    st->pid = 42;
    st->annotations = calloc (1, sizeof (*st->annotations));
    st->annotations->keys = calloc (2, sizeof (char *));
    st->annotations->values = calloc (2, sizeof (char *));
    st->annotations->keys[0] = strdup ("k");
    st->annotations->values[0] = strdup ("v");
    st->annotations->len = 1;
    got = oci_state_to_json (st, 0, &len);
    CHECK_STREQ (got,
                 "{\"ociVersion\":\"1.3.0\",\"id\":\"c\xef\xbf\xbd\xef\xbf\xbd\",\"status\":\"running\",\"pid\":42,"
                 "\"bundle\":\"/b\",\"annotations\":{\"k\":\"v\"}}");
    CHECK (got && len == strlen (got));
    oci_state *back = got ? oci_state_parse_data (got, len, &errs) : NULL;
    CHECK (back != NULL && back->has_pid && back->pid == 42);
    CHECK (back != NULL && strcmp (back->id, "c\xef\xbf\xbd\xef\xbf\xbd") == 0);
    oci_state_free (back);
    free (got);

    st->pid = 0;
    got = oci_state_to_json (st, 0, NULL);
    CHECK (got && strstr (got, "\"pid\"") == NULL);
    free (got);
    st->has_pid = true;
    got = oci_state_to_json (st, 0, NULL);
    CHECK (got && strstr (got, "\"pid\":0") != NULL);
    free (got);
    oci_state_free (st);
    ocispec_errors_free (&errs);

    oci_runc_state *rs = calloc (1, sizeof (*rs));
    got = oci_runc_state_to_json (rs, 0, NULL);
    CHECK_STREQ (got, "{\"pid\":0}");
    free (got);
    oci_runc_state_free (rs);
    CHECK (oci_config_to_json (NULL, 0, NULL) == NULL);
  }

  /* Frees accept NULL.  */
  oci_config_free (NULL);
  oci_map_string_free (NULL);
  oci_map_rdma_free (NULL);
  ocispec_errors_free (NULL);
}

static void
test_other_roots (void)
{
  static const char *docs[] = {
    "{\"ociVersion\":\"1.3.0\",\"id\":\"c1\",\"status\":\"created\",\"pid\":4242,\"bundle\":\"/b\","
    "\"annotations\":{\"a\":\"b\"}}",
    "{\"ociVersion\":\"1.3.0\",\"id\":\"c1\",\"pid\":0,\"status\":\"stopped\",\"bundle\":\"/b\",\"rootfs\":\"/b/"
    "rootfs\","
    "\"created\":\"2024-01-01T00:00:00.000000000Z\",\"owner\":\"\"}",
    "{\"ociVersionMin\":\"1.0.0\",\"ociVersionMax\":\"1.3.0\",\"hooks\":[\"prestart\"],\"mountOptions\":[\"ro\"],"
    "\"linux\":{\"namespaces\":[\"pid\"],\"capabilities\":[\"CAP_KILL\"],\"cgroup\":{\"v1\":true,\"v2\":true,"
    "\"systemd\":false,\"systemdUser\":false,\"rdma\":true},\"seccomp\":{\"enabled\":true,\"actions\":[\"SCMP_ACT_"
    "LOG\"],"
    "\"operators\":[\"SCMP_CMP_NE\"],\"archs\":[\"SCMP_ARCH_X86_64\"],\"knownFlags\":[],\"supportedFlags\":[]},"
    "\"apparmor\":{\"enabled\":true},\"selinux\":{\"enabled\":false},\"intelRdt\":{\"enabled\":false,\"schemata\":true}"
    ","
    "\"mountExtensions\":{\"idmap\":{\"enabled\":true}},\"netDevices\":{\"enabled\":true},"
    "\"memoryPolicy\":{\"modes\":[\"MPOL_DEFAULT\"],\"flags\":[]}},\"annotations\":{\"x\":\"y\"},"
    "\"potentiallyUnsafeConfigAnnotations\":[\"com.example.\"]}",
    "{\"id\":\"c1\",\"pid\":1,\"pidStartTime\":18446744073709551615,\"bundle\":\"/b\",\"rootfs\":\"/r\","
    "\"created\":\"t\",\"owner\":\"root\",\"cgroupPath\":\"/ocirun/c1\",\"cgroupManager\":\"cgroupfs\","
    "\"systemdScope\":\"\",\"configPath\":\"/b/config.json\",\"detached\":true,\"annotations\":{}}",
    "{\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"ls\"],\"cwd\":\"/\"}",
    "{\"memory\":{\"limit\":1},\"unified\":{\"cpu.max\":\"max 100000\"}}",
  };
  ocispec_errors errs = { 0 };

  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
    {
      const char *d = docs[i];
      size_t l = strlen (d);
      char *out = NULL;
      void *v = NULL;
      switch (i)
        {
        case 0:
          v = oci_state_parse_data (d, l, &errs);
          out = v ? oci_state_to_json (v, 0, NULL) : NULL;
          oci_state_free (v);
          break;
        case 1:
          v = oci_runc_state_parse_data (d, l, &errs);
          out = v ? oci_runc_state_to_json (v, 0, NULL) : NULL;
          oci_runc_state_free (v);
          break;
        case 2:
          v = oci_features_parse_data (d, l, &errs);
          CHECK (v && ((oci_features *)v)->linux->cgroup->has_systemd_user);
          out = v ? oci_features_to_json (v, 0, NULL) : NULL;
          oci_features_free (v);
          break;
        case 3:
          v = oci_container_status_parse_data (d, l, &errs);
          CHECK (v && ((oci_container_status *)v)->pid_start_time == UINT64_MAX);
          out = v ? oci_container_status_to_json (v, 0, NULL) : NULL;
          oci_container_status_free (v);
          break;
        case 4:
          v = oci_process_parse_data (d, l, &errs);
          out = v ? oci_process_to_json (v, 0, NULL) : NULL;
          oci_process_free (v);
          break;
        case 5:
          v = oci_resources_parse_data (d, l, &errs);
          out = v ? oci_resources_to_json (v, 0, NULL) : NULL;
          oci_resources_free (v);
          break;
        }
      /* Each document is written in schema order, so it comes back as is. */
      CHECK_STREQ (out, d);
      free (out);
    }
  print_errors (&errs);
  CHECK (errs.len == 0);
  ocispec_errors_free (&errs);

  /* A root type's own errors start at its top level.  */
  CHECK (oci_process_parse_data ("{\"user\":{\"uid\":0}}", 18, &errs) == NULL);
  CHECK (errs.len == 2);
  if (errs.len == 2)
    {
      CHECK_STREQ (errs.msgs[0], "user.gid: required field is missing");
      CHECK_STREQ (errs.msgs[1], "cwd: required field is missing");
    }
  /* Errors add up across calls; each parse fails only on its own.  */
  oci_resources *r = oci_resources_parse_data ("{}", 2, &errs);
  CHECK (r != NULL && errs.len == 2);
  oci_resources_free (r);
  ocispec_errors_free (&errs);
}

/* runc's descriptors.json: a document that is an array of strings. */
static void
test_string_arrays (void)
{
  ocispec_errors errs = { 0 };
  char *in[] = { (char *)"pipe:[1234]", (char *)"/dev/null", (char *)"q\"\\\n\x01" };
  char *json = ocispec_strings_to_json (in, 3);
  size_t n = 0;
  char **v;

  CHECK_STREQ (json, "[\"pipe:[1234]\",\"/dev/null\",\"q\\\"\\\\\\n\\u0001\"]");
  v = ocispec_strings_parse_data (json, strlen (json), &n, &errs);
  CHECK (v != NULL && n == 3 && v[3] == NULL);
  for (size_t i = 0; v && i < 3; i++)
    CHECK_STREQ (v[i], in[i]);
  for (size_t i = 0; v && i < n; i++)
    free (v[i]);
  free (v);
  free (json);

  json = ocispec_strings_to_json (NULL, 0);
  CHECK_STREQ (json, "[]");
  v = ocispec_strings_parse_data (json, 2, &n, &errs);
  CHECK (v != NULL && n == 0 && v[0] == NULL);
  free (v);
  free (json);
  CHECK (errs.len == 0);

  /* Each problem names its place, and nothing is returned. */
  CHECK (ocispec_strings_parse_data ("[\"a\", 3, \"b\\u0000\"]", 19, &n, &errs) == NULL && n == 0);
  CHECK (errs.len == 2);
  if (errs.len == 2)
    {
      CHECK_STREQ (errs.msgs[0], "[1]: expected a string, got 3");
      CHECK_STREQ (errs.msgs[1], "[2]: string contains a NUL character");
    }
  ocispec_errors_free (&errs);
  CHECK (ocispec_strings_parse_data ("{}", 2, &n, &errs) == NULL);
  CHECK (errs.len == 1 && strstr (errs.msgs[0], "(root): expected an array") == errs.msgs[0]);
  ocispec_errors_free (&errs);
  CHECK (ocispec_strings_parse_data ("[\"a\"", 4, &n, &errs) == NULL);
  CHECK (errs.len == 1 && strncmp (errs.msgs[0], "invalid JSON: ", 14) == 0);
  ocispec_errors_free (&errs);
}

int
main (void)
{
  test_string_arrays ();
  test_full_config ();
  test_errors ();
  test_parse_file_errors ();
  test_serialise ();
  test_other_roots ();
  UNIT_DONE ();
}
