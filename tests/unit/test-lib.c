/* Unit tests for the CLI's library half: signal names, container ids, log
 * lines, the default spec, features, bundle checks, JSON re-indentation. */
#include "config.h"
#include "cli.h"
#include "dlopen.h"
#include "ocirun.h"
#include "passwd.h"
#include "unit.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
sig (const char *s)
{
  ocirun_error_t err = NULL;
  int signo = -12345;
  int ret = ocirun_parse_signal (s, &signo, &err);
  if (ret < 0)
    {
      /* A failure must carry a message and a negative errno. */
      CHECK (err != NULL && err->msg != NULL);
      CHECK (ret == -EINVAL);
      ocirun_error_free (&err);
      return -1;
    }
  CHECK (err == NULL);
  return signo;
}

static void
test_signals (void)
{
  CHECK (sig ("KILL") == SIGKILL);
  CHECK (sig ("SIGKILL") == SIGKILL);
  CHECK (sig ("kill") == SIGKILL);
  CHECK (sig ("sigterm") == SIGTERM);
  CHECK (sig ("9") == 9);
  CHECK (sig ("0") == 0);
  CHECK (sig ("HUP") == SIGHUP);
  CHECK (sig ("USR1") == SIGUSR1);
  CHECK (sig ("WINCH") == SIGWINCH);
  CHECK (sig ("IOT") == SIGABRT);
  CHECK (sig ("CLD") == SIGCHLD);
  CHECK (sig ("RTMIN") == SIGRTMIN);
  CHECK (sig ("RTMIN+1") == SIGRTMIN + 1);
  CHECK (sig ("SIGRTMIN+3") == SIGRTMIN + 3);
  CHECK (sig ("rtmax-2") == SIGRTMAX - 2);
  CHECK (sig ("RTMAX") == SIGRTMAX);

  CHECK (sig ("") == -1);
  CHECK (sig ("FOO") == -1);
  CHECK (sig ("SIG") == -1);
  CHECK (sig ("-1") == -1);
  CHECK (sig ("9x") == -1);
  CHECK (sig ("99999") == -1);
  CHECK (sig ("RTMIN+x") == -1);
  CHECK (sig ("RTMIN+100") == -1);
  CHECK (sig ("RTMAX+1") == -1);
}

static int
id_ok (const char *id)
{
  ocirun_error_t err = NULL;
  int ret = ocirun_validate_id (id, &err);
  if (ret < 0)
    {
      CHECK (err != NULL && strstr (err->msg, "invalid id format") != NULL);
      ocirun_error_free (&err);
    }
  return ret == 0;
}

static void
test_ids (void)
{
  char long_id[1100];

  CHECK (id_ok ("abc"));
  CHECK (id_ok ("a.b_c+d-1"));
  CHECK (id_ok ("ABC123"));
  CHECK (id_ok ("..."));
  CHECK (!id_ok (""));
  CHECK (!id_ok ("."));
  CHECK (!id_ok (".."));
  CHECK (!id_ok ("a/b"));
  CHECK (!id_ok ("/abs"));
  CHECK (!id_ok ("a b"));
  CHECK (!id_ok ("a\nb"));
  CHECK (!id_ok ("caf\xc3\xa9"));
  CHECK (!id_ok ("a:b"));

  memset (long_id, 'x', 1024);
  long_id[1024] = '\0';
  CHECK (id_ok (long_id));
  long_id[1024] = 'x';
  long_id[1025] = '\0';
  CHECK (!id_ok (long_id));
}

/* "2026-01-02T03:04:05Z" or "...+01:00" */
static bool
is_rfc3339 (const char *t, size_t len)
{
  static const char pattern[] = "dddd-dd-ddTdd:dd:dd";

  if (len != 20 && len != 25)
    return false;
  for (size_t i = 0; i < sizeof pattern - 1; i++)
    if (pattern[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != pattern[i])
      return false;
  return len == 20 ? t[19] == 'Z' : (t[19] == '+' || t[19] == '-');
}

static void
test_log_lines (void)
{
  cleanup_free char *j
      = ocirun_log_format_line (OCIRUN_LOG_JSON, OCIRUN_LOG_ERROR, "say \"hi\"\\\nnext\ttab\x01 end\x7f");
  cleanup_free char *t1 = ocirun_log_format_line (OCIRUN_LOG_TEXT, OCIRUN_LOG_WARNING, "a \"b\"\nc");
  cleanup_free char *t2 = ocirun_log_format_line (OCIRUN_LOG_TEXT, OCIRUN_LOG_DEBUG, "simple-word");
  const char *prefix = "{\"level\":\"error\",\"msg\":\"say \\\"hi\\\"\\\\\\nnext\\ttab\\u0001 end\\u007f\",\"time\":\"";
  const char *p;

  CHECK (j != NULL && strncmp (j, prefix, strlen (prefix)) == 0);
  if (j && strncmp (j, prefix, strlen (prefix)) == 0)
    {
      const char *time = j + strlen (prefix);
      const char *end = strchr (time, '"');
      CHECK (end != NULL && is_rfc3339 (time, (size_t)(end - time)));
      CHECK (end != NULL && strcmp (end, "\"}\n") == 0);
    }
  /* One object per line, whatever the message holds. */
  CHECK (j && strchr (j, '\n') == j + strlen (j) - 1);

  CHECK (t1 && strncmp (t1, "time=\"", 6) == 0);
  p = t1 ? strstr (t1, "\" level=") : NULL;
  CHECK (p != NULL && strcmp (p, "\" level=warning msg=\"a \\\"b\\\"\\nc\"\n") == 0);
  CHECK (p && is_rfc3339 (t1 + 6, (size_t)(p - (t1 + 6))));
  p = t2 ? strstr (t2, " level=") : NULL;
  CHECK (p != NULL && strcmp (p, " level=debug msg=simple-word\n") == 0);
}

static void
test_logger (void)
{
  struct ocirun_logger l;
  char buf[512];
  int fds[2];
  ssize_t n;

  CHECK (pipe2 (fds, O_NONBLOCK | O_CLOEXEC) == 0);
  l.fd = fds[1];
  l.format = OCIRUN_LOG_JSON;
  l.max_level = OCIRUN_LOG_WARNING;
  errno = EBADF;
  ocirun_debug (&l, "dropped %d", 1);
  ocirun_warning (&l, "kept %s", "x");
  CHECK (errno == EBADF); /* logging must not clobber errno */
  n = read (fds[0], buf, sizeof buf - 1);
  CHECK (n > 0);
  if (n > 0)
    {
      buf[n] = '\0';
      CHECK (strncmp (buf, "{\"level\":\"warning\",\"msg\":\"kept x\",", 34) == 0);
      CHECK (strstr (buf, "dropped") == NULL);
    }
  ocirun_log (NULL, OCIRUN_LOG_ERROR, "no logger is fine");
  close (fds[0]);
  close (fds[1]);
}

static bool
has_ns (const oci_config *c, const char *type)
{
  for (size_t i = 0; i < c->linux->namespaces_len; i++)
    if (strcmp (c->linux->namespaces[i]->type, type) == 0)
      return true;
  return false;
}

static void
test_default_spec (void)
{
  oci_config *c = ocirun_default_spec (false);
  oci_config *r = ocirun_default_spec (true);

  CHECK (c != NULL && r != NULL);
  if (c == NULL || r == NULL)
    return;
  CHECK_STREQ (c->oci_version, "1.3.0");
  CHECK (c->process->args_len == 1);
  CHECK_STREQ (c->process->args[0], "sh");
  CHECK (c->process->args[1] == NULL);
  CHECK (c->process->has_terminal && c->process->terminal);
  CHECK_STREQ (c->process->cwd, "/");
  CHECK_STREQ (c->root->path, "rootfs");
  CHECK (c->root->readonly);
  CHECK_STREQ (c->hostname, "runc");
  CHECK (c->mounts_len == 7);
  CHECK_STREQ (c->mounts[0]->destination, "/proc");
  /* runc 1.1 `spec`: these five, no cgroup namespace. */
  CHECK (c->linux->namespaces_len == 5);
  CHECK (has_ns (c, "pid") && has_ns (c, "network") && has_ns (c, "ipc") && has_ns (c, "uts") && has_ns (c, "mount"));
  CHECK (!has_ns (c, "user") && !has_ns (c, "cgroup"));
  CHECK (c->linux->uid_mappings_len == 0);
  CHECK (c->linux->masked_paths_len == 10 && c->linux->readonly_paths_len == 5);
  CHECK (c->linux->resources && c->linux->resources->devices_len == 1 && !c->linux->resources->devices[0]->allow);

  CHECK (has_ns (r, "user") && !has_ns (r, "network"));
  CHECK (r->linux->uid_mappings_len == 1 && r->linux->gid_mappings_len == 1);
  if (r->linux->uid_mappings_len == 1 && r->linux->gid_mappings_len == 1)
    {
      CHECK (r->linux->uid_mappings[0]->container_id == 0);
      CHECK (r->linux->uid_mappings[0]->host_id == geteuid ());
      CHECK (r->linux->uid_mappings[0]->size == 1);
      CHECK (r->linux->gid_mappings[0]->host_id == getegid ());
    }
  CHECK (r->linux->resources == NULL);

  oci_config_free (c);
  oci_config_free (r);
}

static void
test_features (void)
{
  oci_features *f = ocirun_features ();

  CHECK (f != NULL);
  if (f == NULL)
    return;
  CHECK_STREQ (f->oci_version_min, "1.0.0");
  CHECK_STREQ (f->oci_version_max, "1.3.0");
  CHECK (f->hooks_len == 6);
  CHECK (f->linux && f->linux->namespaces_len == 8);
  CHECK (f->linux && f->linux->capabilities_len > 30);
  CHECK (f->linux && f->linux->capabilities_len > 0 && strcmp (f->linux->capabilities[0], "CAP_CHOWN") == 0);
  CHECK (f->linux && f->linux->seccomp && f->linux->seccomp->archs_len > 0);
  CHECK (f->annotations && oci_map_string_get (f->annotations, "run.oci.ocirun.version") != NULL);
  oci_features_free (f);
}

static bool
has_problem (const struct ocirun_problems *p, const char *needle)
{
  for (size_t i = 0; i < p->len; i++)
    if (strstr (p->msgs[i], needle))
      return true;
  fprintf (stderr, "no problem matching `%s`\n", needle);
  return false;
}

static void
write_file (const char *path, const char *data)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CHECK (fd >= 0);
  if (fd >= 0)
    {
      CHECK (ocirun_write_all (fd, data, strlen (data)) == (ssize_t)strlen (data));
      close (fd);
    }
}

static void
test_check_bundle (void)
{
  char dir[] = "/tmp/ocirun-test-lib-XXXXXX";
  cleanup_free char *cfg = NULL;
  cleanup_free char *rootfs = NULL;
  struct ocirun_problems p = { NULL, 0 };
  ocirun_error_t err = NULL;
  int n;

  CHECK (mkdtemp (dir) != NULL);
  xasprintf (&cfg, "%s/config.json", dir);
  xasprintf (&rootfs, "%s/rootfs", dir);

  /* The default spec with its rootfs is valid. */
  {
    oci_config *c = ocirun_default_spec (false);
    size_t len;
    cleanup_free char *json = oci_config_to_json (c, 0, &len);
    write_file (cfg, json);
    oci_config_free (c);
  }
  CHECK (mkdir (rootfs, 0755) == 0);
  n = ocirun_check_bundle (dir, NULL, false, &p, &err);
  CHECK (n == 0);
  for (size_t i = 0; i < p.len; i++)
    fprintf (stderr, "unexpected problem: %s\n", p.msgs[i]);
  ocirun_problems_free (&p);

  write_file (cfg, "{\"ociVersion\": \"2.0\", \"root\": {\"path\": \"nope\"},"
                   " \"hostname\": \"h\","
                   " \"process\": {\"cwd\": \"rel\", \"args\": [], \"user\": {\"uid\": 0, \"gid\": 0, \"umask\": 1023},"
                   "   \"rlimits\": [{\"type\": \"RLIMIT_FOO\", \"soft\": 2, \"hard\": 1}],"
                   "   \"capabilities\": {\"bounding\": [\"CAP_NOPE\"]}, \"oomScoreAdj\": -1001},"
                   " \"mounts\": [{\"destination\": \"rel\"}],"
                   " \"hooks\": {\"prestart\": [{\"path\": \"/nonexistent-hook\"}]},"
                   " \"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"pid\"}, {\"type\": \"user\"},"
                   "   {\"type\": \"nope\"}],"
                   "   \"sysctl\": {\"net.ipv4.ip_forward\": \"1\", \"kernel.shmmax\": \"1\", \"vm.x\": \"1\"},"
                   "   \"devices\": [{\"type\": \"q\", \"path\": \"dev/x\", \"major\": 1, \"minor\": 1}],"
                   "   \"seccomp\": {\"defaultAction\": \"SCMP_ACT_X\", \"architectures\": [\"SCMP_ARCH_NOPE\"]},"
                   "   \"rootfsPropagation\": \"sideways\", \"timeOffsets\": {\"boottime\": {\"secs\": 1}},"
                   "   \"personality\": {\"domain\": \"LINUX64\"}}}");
  n = ocirun_check_bundle (dir, "config.json", false, &p, &err);
  CHECK (n == (int)p.len);
  CHECK (has_problem (&p, "ociVersion: `2.0`"));
  CHECK (has_problem (&p, "root.path: `nope`"));
  CHECK (has_problem (&p, "process.cwd: `rel`"));
  CHECK (has_problem (&p, "process.args"));
  CHECK (has_problem (&p, "process.user.umask"));
  CHECK (has_problem (&p, "process.oomScoreAdj"));
  CHECK (has_problem (&p, "unknown rlimit `RLIMIT_FOO`"));
  CHECK (has_problem (&p, "soft limit 2 is larger than hard limit 1"));
  CHECK (has_problem (&p, "unknown capability `CAP_NOPE`"));
  CHECK (has_problem (&p, "mounts[0].destination"));
  CHECK (has_problem (&p, "hooks.prestart[0].path"));
  CHECK (has_problem (&p, "namespace `pid` is listed more than once"));
  CHECK (has_problem (&p, "unknown namespace type `nope`"));
  CHECK (has_problem (&p, "a new user namespace needs both mappings"));
  CHECK (has_problem (&p, "hostname: cannot be set without a uts namespace"));
  CHECK (has_problem (&p, "`net.ipv4.ip_forward` needs a network namespace"));
  CHECK (has_problem (&p, "`kernel.shmmax` needs an ipc namespace"));
  CHECK (has_problem (&p, "`vm.x` is not in a separate kernel namespace"));
  CHECK (has_problem (&p, "linux.devices[0].type"));
  CHECK (has_problem (&p, "linux.devices[0].path"));
  CHECK (has_problem (&p, "unknown action `SCMP_ACT_X`"));
  CHECK (has_problem (&p, "unknown architecture `SCMP_ARCH_NOPE`"));
  CHECK (has_problem (&p, "unknown propagation `sideways`"));
  CHECK (has_problem (&p, "linux.timeOffsets"));
  CHECK (has_problem (&p, "unknown domain `LINUX64`"));
  ocirun_problems_free (&p);

  /* Parse errors come back prefixed with the file name. */
  write_file (cfg, "{\"ociVersion\": 1, \"process\": {\"cwd\": \"/\", \"user\": {\"uid\": \"x\", \"gid\": 0}}}");
  n = ocirun_check_bundle (dir, "config.json", false, &p, &err);
  CHECK (n >= 2);
  CHECK (p.len > 0 && strncmp (p.msgs[0], "config.json: ", 13) == 0);
  CHECK (has_problem (&p, "process.user.uid"));
  ocirun_problems_free (&p);

  /* A missing config is a problem; a missing bundle is an error. */
  unlink (cfg);
  CHECK (ocirun_check_bundle (dir, NULL, false, &p, &err) == 1);
  ocirun_problems_free (&p);
  CHECK (ocirun_check_bundle ("/nonexistent-bundle", NULL, false, &p, &err) == -ENOENT);
  CHECK (err != NULL);
  ocirun_error_free (&err);

  rmdir (rootfs);
  rmdir (dir);
}

static void
test_reindent (void)
{
  cleanup_free char *a = cli_json_reindent ("{\"a\":[1,2],\"b\":{},\"c\":[],\"d\":\"x, {y}: \\\"z\\\"\"}", "  ");
  cleanup_free char *b = cli_json_reindent ("{\"a\":[1,", "  ");
  cleanup_free char *c = cli_json_reindent ("[]", "\t");

  CHECK_STREQ (a, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"d\": \"x, {y}: \\\"z\\\"\"\n}");
  CHECK (b == NULL);
  CHECK_STREQ (c, "[]");
}

static char *
release_of (const char *path)
{
  char out[32];
  ocirun_error_t err = NULL;

  if (ocirun_libc_release_of (path, out, sizeof out, &err) < 0)
    {
      CHECK (err != NULL && err->msg != NULL);
      ocirun_error_free (&err);
      return NULL;
    }
  CHECK (err == NULL);
  return xstrdup (out);
}

/* expected NULL: the reader must fail with a message. */
static void
check_release (const char *path, const char *expected)
{
  cleanup_free char *got = release_of (path);

  if (expected)
    CHECK_STREQ (got, expected);
  else
    CHECK (got == NULL);
}

static void
check_pw (const char *path, uid_t uid, enum ocirun_passwd_field field, const char *expected)
{
  cleanup_free char *got = ocirun_passwd_lookup (path, uid, field);

  if (expected)
    CHECK_STREQ (got, expected);
  else
    CHECK (got == NULL);
}

static int
find_libc (struct dl_phdr_info *info, size_t size, void *data)
{
  if (strstr (info->dlpi_name, "/libc.so.6"))
    {
      *(char **)data = xstrdup (info->dlpi_name);
      return 1;
    }
  return 0;
}

/* A static ocirun compares the host libc.so.6's banner with its own glibc
 * before it dlopens libsystemd. */
static void
test_libc_release (void)
{
  char dir[] = "/tmp/ocirun-test-libc-XXXXXX";
  cleanup_free char *f = NULL;
  cleanup_free char *big = NULL;
  cleanup_free char *libc = NULL;
  size_t n = 16 * 1024 * 3;

  CHECK (mkdtemp (dir) != NULL);
  xasprintf (&f, "%s/libc.so.6", dir);

  write_file (f, "\x7f"
                 "ELF junk GNU C Library (Debian GLIBC 2.36-9+deb12u9) stable release version 2.36.\n more");
  check_release (f, "2.36");
  /* The last bytes of the file, without the final dot. */
  write_file (f, "junk development release version 2.40.9000");
  check_release (f, "2.40.9000");
  write_file (f, "no banner in here at all");
  check_release (f, NULL);
  write_file (f, "release version x.y.");
  check_release (f, NULL);
  CHECK (unlink (f) == 0);
  check_release (f, NULL);

  /* Banners across every read boundary of the reader (16 KiB reads, 64 bytes
   * kept): each must come out whole. */
  for (size_t at = 16 * 1024 - 30; at < 16 * 1024 + 4; at += 3)
    {
      const char *b = "stable release version 2.41.";
      big = xmalloc0 (n + 1);
      memset (big, 'x', n);
      memcpy (big + at, b, strlen (b));
      write_file (f, big);
      check_release (f, "2.41");
      free (big);
      big = NULL;
    }

  /* The real one: this dynamic test program's own libc.so.6. */
  CHECK (dl_iterate_phdr (find_libc, &libc) == 1);
  if (libc)
    check_release (libc, gnu_get_libc_version ());

  unlink (f);
  rmdir (dir);
}

/* runc's list and HOME come from /etc/passwd itself, not NSS. */
static void
test_passwd (void)
{
  char dir[] = "/tmp/ocirun-test-pw-XXXXXX";
  cleanup_free char *f = NULL;

  CHECK (mkdtemp (dir) != NULL);
  xasprintf (&f, "%s/passwd", dir);
  write_file (f, "root:x:0:0:root:/root:/bin/sh\n"
                 "# a comment\n"
                 "broken\n"
                 "short:x:7\n"
                 "bad:x:12a:0::/bad:/bin/sh\n"
                 "user:x:1000:1000:A User:/home/user:/bin/sh\n"
                 "dup:x:1000:1000::/dup:/bin/sh\n"
                 "nohome:x:1001:1001:::/bin/sh");
  check_pw (f, 0, OCIRUN_PASSWD_NAME, "root");
  check_pw (f, 0, OCIRUN_PASSWD_HOME, "/root");
  check_pw (f, 1000, OCIRUN_PASSWD_NAME, "user");
  check_pw (f, 1000, OCIRUN_PASSWD_HOME, "/home/user");
  check_pw (f, 7, OCIRUN_PASSWD_NAME, "short");
  check_pw (f, 7, OCIRUN_PASSWD_HOME, "");
  check_pw (f, 1001, OCIRUN_PASSWD_HOME, "");
  check_pw (f, 12, OCIRUN_PASSWD_NAME, NULL);
  check_pw (f, 4242, OCIRUN_PASSWD_NAME, NULL);
  unlink (f);
  check_pw (f, 0, OCIRUN_PASSWD_NAME, NULL);
  rmdir (dir);
}

int
main (void)
{
  test_signals ();
  test_ids ();
  test_log_lines ();
  test_logger ();
  test_default_spec ();
  test_features ();
  test_check_bundle ();
  test_reindent ();
  test_libc_release ();
  test_passwd ();
  UNIT_DONE ();
}
