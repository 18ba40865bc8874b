#include "config.h"
#include "ocirun.h"
#include "seccomp-filter.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The document is assembled as JSON text and parsed back, so it goes
 * through the same validation as every other document; every string put in
 * it is a plain identifier or a version, so no escaping is needed. */
struct text
{
  char *s;
  size_t len;
};

static void __attribute__ ((format (printf, 2, 3))) add (struct text *t, const char *fmt, ...)
{
  cleanup_free char *piece = NULL;
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vasprintf (&piece, fmt, ap);
  va_end (ap);
  if (n < 0)
    abort ();
  t->s = xrealloc (t->s, t->len + (size_t)n + 1);
  memcpy (t->s + t->len, piece, (size_t)n + 1);
  t->len += (size_t)n;
}

static void
add_list (struct text *t, const char *key, const char *const *items, size_t n)
{
  add (t, "\"%s\":[", key);
  for (size_t i = 0; i < n; i++)
    add (t, "%s\"%s\"", i ? "," : "", items[i]);
  add (t, "]");
}

#define N_ELEMS(a) (sizeof (a) / sizeof ((a)[0]))

static const char *const hooks[]
    = { "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop" };

/* runc 1.1's list plus idmap/ridmap: every option mounts.c accepts. */
static const char *const mount_options[] = {
  "acl",
  "async",
  "atime",
  "bind",
  "defaults",
  "dev",
  "diratime",
  "dirsync",
  "exec",
  "idmap",
  "iversion",
  "lazytime",
  "loud",
  "mand",
  "noacl",
  "noatime",
  "nodev",
  "nodiratime",
  "noexec",
  "noiversion",
  "nolazytime",
  "nomand",
  "norelatime",
  "nostrictatime",
  "nosuid",
  "nosymfollow",
  "private",
  "ratime",
  "rbind",
  "rdev",
  "rdiratime",
  "relatime",
  "remount",
  "rexec",
  "ridmap",
  "rnoatime",
  "rnodev",
  "rnodiratime",
  "rnoexec",
  "rnorelatime",
  "rnostrictatime",
  "rnosuid",
  "rnosymfollow",
  "ro",
  "rprivate",
  "rrelatime",
  "rro",
  "rrw",
  "rshared",
  "rslave",
  "rstrictatime",
  "rsuid",
  "rsymfollow",
  "runbindable",
  "rw",
  "shared",
  "silent",
  "slave",
  "strictatime",
  "suid",
  "symfollow",
  "sync",
  "tmpcopyup",
  "unbindable",
};

static const char *const namespaces[] = { "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts" };

static const char *const seccomp_actions[]
    = { "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO",  "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_LOG",   "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP" };
static const char *const seccomp_ops[] = { "SCMP_CMP_EQ", "SCMP_CMP_GE",        "SCMP_CMP_GT", "SCMP_CMP_LE",
                                           "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE" };
/* Candidates; only those the linked libseccomp resolves are listed. */
static const char *const seccomp_archs[]
    = { "aarch64",     "arm",    "mips",     "mips64", "mips64n32", "mipsel",  "mipsel64",
        "mipsel64n32", "parisc", "parisc64", "ppc",    "ppc64",     "ppc64le", "riscv64",
        "s390",        "s390x",  "x32",      "x86",    "x86_64" };

static const struct
{
  const char *name;
  unsigned int flag;
} seccomp_flags[] = {
  { "SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC },
  { "SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG },
  { "SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW },
};

/* The kernel validates the flags before it reads the (NULL) program, so a
 * supported flag fails with EFAULT and an unknown one with EINVAL; nothing
 * is installed either way. */
static bool
seccomp_flag_supported (unsigned int flag)
{
  long r = syscall (__NR_seccomp, SECCOMP_SET_MODE_FILTER, flag, NULL);
  return r < 0 && errno == EFAULT;
}

static void
add_seccomp (struct text *t, bool have_lib)
{
  const char *archs[N_ELEMS (seccomp_archs)];
  const char *known[N_ELEMS (seccomp_flags)], *supported[N_ELEMS (seccomp_flags)];
  char names[N_ELEMS (seccomp_archs)][32];
  size_t n_archs = 0, n_supported = 0;
  /* features.md: "enabled" says support is compiled in, not that the
   * kernel has it; the kernel's part shows in supportedFlags. */
  bool kernel_has_seccomp = prctl (PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;

  if (!have_lib)
    {
      add (t, "\"seccomp\":{\"enabled\":false}");
      return;
    }
  for (size_t i = 0; i < N_ELEMS (seccomp_archs); i++)
    if (ocirun_seccomp_arch_known (seccomp_archs[i]))
      {
        char *d = names[n_archs];
        snprintf (d, sizeof names[0], "SCMP_ARCH_%s", seccomp_archs[i]);
        for (char *c = d + 10; *c; c++)
          *c = (char)toupper ((unsigned char)*c);
        archs[n_archs++] = d;
      }
  for (size_t i = 0; i < N_ELEMS (seccomp_flags); i++)
    {
      known[i] = seccomp_flags[i].name;
      if (kernel_has_seccomp && seccomp_flag_supported (seccomp_flags[i].flag))
        supported[n_supported++] = seccomp_flags[i].name;
    }

  add (t, "\"seccomp\":{\"enabled\":true,");
  add_list (t, "actions", seccomp_actions, N_ELEMS (seccomp_actions));
  add (t, ",");
  add_list (t, "operators", seccomp_ops, N_ELEMS (seccomp_ops));
  add (t, ",");
  add_list (t, "archs", archs, n_archs);
  add (t, ",");
  add_list (t, "knownFlags", known, N_ELEMS (seccomp_flags));
  add (t, ",");
  add_list (t, "supportedFlags", supported, n_supported);
  add (t, "}");
}

static void
add_capabilities (struct text *t)
{
  bool first = true;

  add (t, "\"capabilities\":[");
  for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
    {
      char *name = cap_to_name (c);
      if (name == NULL)
        continue;
      /* libcap prints capabilities it has no name for as a number. */
      if (strncmp (name, "cap_", 4) == 0)
        {
          add (t, "%s\"", first ? "" : ",");
          for (char *p = name; *p; p++)
            add (t, "%c", toupper ((unsigned char)*p));
          add (t, "\"");
          first = false;
        }
      cap_free (name);
    }
  add (t, "]");
}

oci_features *
ocirun_features (void)
{
  struct text t = { NULL, 0 };
  cleanup_error ocirun_error_t serr = NULL;
  unsigned major, minor, micro;
  /* Without libseccomp this build cannot apply filters: say so. */
  bool have_seccomp = ocirun_seccomp_version (&major, &minor, &micro, &serr) == 0;
  ocispec_errors errs = { NULL, 0 };
  oci_features *f;

  add (&t, "{\"ociVersionMin\":\"1.0.0\",\"ociVersionMax\":\"%s\",", OCI_SPEC_VERSION);
  add_list (&t, "hooks", hooks, N_ELEMS (hooks));
  add (&t, ",");
  add_list (&t, "mountOptions", mount_options, N_ELEMS (mount_options));
  add (&t, ",\"linux\":{");
  add_list (&t, "namespaces", namespaces, N_ELEMS (namespaces));
  add (&t, ",");
  add_capabilities (&t);
  add (&t, ",\"cgroup\":{\"v1\":true,\"v2\":true,\"systemd\":true,\"systemdUser\":true},");
  add_seccomp (&t, have_seccomp);
  /* As features-linux.md defines them: whether this build can apply
   * profiles and labels (security.c can), not whether the host has the LSM
   * on right now. */
  add (&t, ",\"apparmor\":{\"enabled\":true},\"selinux\":{\"enabled\":true}");
  add (&t, ",\"intelRdt\":{\"enabled\":true}");
  add (&t, ",\"mountExtensions\":{\"idmap\":{\"enabled\":true}}");
  add (&t, "},\"annotations\":{");
  if (have_seccomp)
    add (&t, "\"io.github.seccomp.libseccomp.version\":\"%u.%u.%u\",", major, minor, micro);
  add (&t, "\"run.oci.ocirun.commit\":\"%s\",\"run.oci.ocirun.version\":\"%s\"}}", GIT_COMMIT, PACKAGE_VERSION);

  f = oci_features_parse_data (t.s, t.len, &errs);
  ocispec_errors_free (&errs);
  free (t.s);
  return f;
}
