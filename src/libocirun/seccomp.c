#include "config.h"
#include "dlopen.h"
#include "ocirun.h"
#include "seccomp-filter.h"
#include "util.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <seccomp.h>
#include <string.h>

#define SECCOMP_MAX_ARGS 6

/* A dynamic ocirun dlopens libseccomp for the containers that have a filter
 * only: mapping it costs every other command ~70 KiB of resident memory and
 * the loader's time. A static one has it linked in, and only the pages a
 * filter touches are ever faulted in. */
#define LIBSECCOMP_FUNCS(X)                                                                                            \
  X (seccomp_init)                                                                                                     \
  X (seccomp_release)                                                                                                  \
  X (seccomp_attr_set)                                                                                                 \
  X (seccomp_arch_add)                                                                                                 \
  X (seccomp_arch_resolve_name)                                                                                        \
  X (seccomp_syscall_resolve_name)                                                                                     \
  X (seccomp_rule_add_array)                                                                                           \
  X (seccomp_load)                                                                                                     \
  X (seccomp_notify_fd)                                                                                                \
  X (seccomp_version)

/* Filled once per process, before it can leave the host's filesystem; the
 * children it clones inherit the mapping. */
static struct
{
#define X(f) __typeof__ (f) *f;
  LIBSECCOMP_FUNCS (X)
#undef X
  bool loaded;
} lib;

#ifdef OCIRUN_STATIC_BINARY
int
ocirun_seccomp_prepare (ocirun_error_t *err)
{
#define X(f) lib.f = f;
  LIBSECCOMP_FUNCS (X)
#undef X
  lib.loaded = true;
  return 0;
}
#else
int
ocirun_seccomp_prepare (ocirun_error_t *err)
{
  void *h;

  if (lib.loaded)
    return 0;
  h = ocirun_dlopen ("libseccomp.so.2", err);
  if (h == NULL)
    return ocirun_error_prefix (err, "seccomp");
#define X(f)                                                                                                           \
  if ((lib.f = (__typeof__ (f) *)dlsym (h, #f)) == NULL)                                                               \
    return ocirun_make_error (err, -ENOENT, "seccomp: libseccomp.so.2 has no %s", #f);
  LIBSECCOMP_FUNCS (X)
#undef X
  lib.loaded = true;
  return 0;
}
#endif

#define seccomp_init (lib.seccomp_init)
#define seccomp_release (lib.seccomp_release)
#define seccomp_attr_set (lib.seccomp_attr_set)
#define seccomp_arch_add (lib.seccomp_arch_add)
#define seccomp_arch_resolve_name (lib.seccomp_arch_resolve_name)
#define seccomp_syscall_resolve_name (lib.seccomp_syscall_resolve_name)
#define seccomp_rule_add_array (lib.seccomp_rule_add_array)
#define seccomp_load (lib.seccomp_load)
#define seccomp_notify_fd (lib.seccomp_notify_fd)
#define seccomp_version (lib.seccomp_version)

int
ocirun_seccomp_version (unsigned *major, unsigned *minor, unsigned *micro, ocirun_error_t *err)
{
  const struct scmp_version *v;
  int ret = ocirun_seccomp_prepare (err);

  if (ret < 0)
    return ret;
  v = seccomp_version ();
  *major = v->major;
  *minor = v->minor;
  *micro = v->micro;
  return 0;
}

bool
ocirun_seccomp_arch_known (const char *name)
{
  return lib.loaded && seccomp_arch_resolve_name (name) != 0;
}

static void
seccomp_release_p (scmp_filter_ctx *ctx)
{
  if (*ctx)
    seccomp_release (*ctx);
  *ctx = NULL;
}
#define cleanup_seccomp __attribute__ ((cleanup (seccomp_release_p)))

/* errnoRet (or defaultErrnoRet) only means something for ERRNO and TRACE;
 * runc defaults both to EPERM. */
static int
parse_action (const char *name, bool has_errno, uint32_t errno_ret, uint32_t *out, ocirun_error_t *err)
{
  uint32_t ret = has_errno ? errno_ret : EPERM;

  if (name == NULL)
    return ocirun_make_error (err, -EINVAL, "missing action");
  if (strcmp (name, "SCMP_ACT_KILL") == 0)
    *out = SCMP_ACT_KILL;
  else if (strcmp (name, "SCMP_ACT_KILL_PROCESS") == 0)
    *out = SCMP_ACT_KILL_PROCESS;
  else if (strcmp (name, "SCMP_ACT_KILL_THREAD") == 0)
    *out = SCMP_ACT_KILL_THREAD;
  else if (strcmp (name, "SCMP_ACT_TRAP") == 0)
    *out = SCMP_ACT_TRAP;
  else if (strcmp (name, "SCMP_ACT_ERRNO") == 0)
    *out = SCMP_ACT_ERRNO (ret);
  else if (strcmp (name, "SCMP_ACT_TRACE") == 0)
    *out = SCMP_ACT_TRACE (ret);
  else if (strcmp (name, "SCMP_ACT_ALLOW") == 0)
    *out = SCMP_ACT_ALLOW;
  else if (strcmp (name, "SCMP_ACT_LOG") == 0)
    *out = SCMP_ACT_LOG;
  else if (strcmp (name, "SCMP_ACT_NOTIFY") == 0)
    *out = SCMP_ACT_NOTIFY;
  else
    return ocirun_make_error (err, -EINVAL, "unknown action `%s`", name);
  /* The action value keeps only 16 bits of data. */
  if (has_errno && errno_ret > 0xffff)
    return ocirun_make_error (err, -EINVAL, "errnoRet %u out of range for `%s`", errno_ret, name);
  return 0;
}

static int
parse_op (const char *name, enum scmp_compare *out, ocirun_error_t *err)
{
  static const struct
  {
    const char *name;
    enum scmp_compare op;
  } ops[] = {
    { "SCMP_CMP_NE", SCMP_CMP_NE },
    { "SCMP_CMP_LT", SCMP_CMP_LT },
    { "SCMP_CMP_LE", SCMP_CMP_LE },
    { "SCMP_CMP_EQ", SCMP_CMP_EQ },
    { "SCMP_CMP_GE", SCMP_CMP_GE },
    { "SCMP_CMP_GT", SCMP_CMP_GT },
    { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
  };
  size_t i;

  for (i = 0; name && i < sizeof (ops) / sizeof (ops[0]); i++)
    if (strcmp (name, ops[i].name) == 0)
      {
        *out = ops[i].op;
        return 0;
      }
  return ocirun_make_error (err, -EINVAL, "unknown operator `%s`", name ? name : "(null)");
}

/* "SCMP_ARCH_X86_64" -> libseccomp's "x86_64". */
static int
parse_arch (const char *name, uint32_t *out, ocirun_error_t *err)
{
  char buf[64];
  size_t i;

  if (name == NULL || strncmp (name, "SCMP_ARCH_", 10) != 0 || strlen (name + 10) >= sizeof (buf))
    goto unknown;
  for (i = 0; name[10 + i]; i++)
    buf[i] = (char)tolower ((unsigned char)name[10 + i]);
  buf[i] = '\0';
  *out = seccomp_arch_resolve_name (buf);
  if (*out == 0)
    goto unknown;
  return 0;

unknown:
  return ocirun_make_error (err, -EINVAL, "unknown architecture `%s`", name ? name : "(null)");
}

static int
set_flag (scmp_filter_ctx ctx, const char *name, ocirun_error_t *err)
{
  enum scmp_filter_attr attr;
  int ret;

  if (strcmp (name, "SECCOMP_FILTER_FLAG_TSYNC") == 0)
    attr = SCMP_FLTATR_CTL_TSYNC;
  else if (strcmp (name, "SECCOMP_FILTER_FLAG_LOG") == 0)
    attr = SCMP_FLTATR_CTL_LOG;
  else if (strcmp (name, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
    attr = SCMP_FLTATR_CTL_SSB;
#ifdef SCMP_FLTATR_CTL_WAITKILL
  else if (strcmp (name, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") == 0)
    attr = SCMP_FLTATR_CTL_WAITKILL;
#else
  else if (strcmp (name, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") == 0)
    return ocirun_make_error (err, -EOPNOTSUPP, "flag `%s` needs libseccomp >= 2.6", name);
#endif
  else
    return ocirun_make_error (err, -EINVAL, "unknown flag `%s`", name);

  ret = seccomp_attr_set (ctx, attr, 1);
  if (ret < 0)
    return ocirun_make_error (err, -ret, "set flag `%s`", name);
  return 0;
}

bool
ocirun_seccomp_uses_notify (const oci_seccomp *seccomp)
{
  size_t i;

  if (seccomp == NULL)
    return false;
  if (seccomp->default_action && strcmp (seccomp->default_action, "SCMP_ACT_NOTIFY") == 0)
    return true;
  for (i = 0; i < seccomp->syscalls_len; i++)
    if (seccomp->syscalls[i]->action && strcmp (seccomp->syscalls[i]->action, "SCMP_ACT_NOTIFY") == 0)
      return true;
  return false;
}

static int
add_syscall_rules (scmp_filter_ctx ctx, const oci_syscall *sc, uint32_t default_action, ocirun_error_t *err)
{
  struct scmp_arg_cmp conds[SECCOMP_MAX_ARGS];
  unsigned per_index[SECCOMP_MAX_ARGS] = { 0 };
  bool split = false;
  uint32_t action;
  size_t i, j;
  int ret;

  ret = parse_action (sc->action, sc->has_errno_ret, sc->errno_ret, &action, err);
  if (ret < 0)
    return ret;
  /* libseccomp refuses rules that repeat the default action; they are
   * no-ops anyway. */
  if (action == default_action)
    return 0;

  if (sc->args_len > SECCOMP_MAX_ARGS)
    return ocirun_make_error (err, -EINVAL, "too many args (%zu)", sc->args_len);
  for (i = 0; i < sc->args_len; i++)
    {
      const oci_syscall_arg *a = sc->args[i];
      enum scmp_compare op = SCMP_CMP_EQ;

      if (a->index >= SECCOMP_MAX_ARGS)
        return ocirun_make_error (err, -EINVAL, "arg index %u out of range", a->index);
      ret = parse_op (a->op, &op, err);
      if (ret < 0)
        return ret;
      conds[i].arg = a->index;
      conds[i].op = op;
      conds[i].datum_a = a->value;
      conds[i].datum_b = a->value_two;
      if (++per_index[a->index] > 1)
        split = true;
    }

  if (action == SCMP_ACT_NOTIFY)
    for (j = 0; j < sc->names_len; j++)
      if (strcmp (sc->names[j], "write") == 0)
        /* The runtime itself still writes after loading the filter. */
        return ocirun_make_error (err, -EINVAL, "SCMP_ACT_NOTIFY cannot be used for the write syscall");

  for (j = 0; j < sc->names_len && sc->names[j]; j++)
    {
      int nr = seccomp_syscall_resolve_name (sc->names[j]);

      if (nr == __NR_SCMP_ERROR)
        continue; /* not a syscall of this architecture or libseccomp: skipped like runc */

      if (sc->args_len == 0)
        ret = seccomp_rule_add_array (ctx, action, nr, 0, NULL);
      else if (!split)
        ret = seccomp_rule_add_array (ctx, action, nr, (unsigned)sc->args_len, conds);
      else
        {
          /* Several conditions on one argument cannot be ANDed by
           * libseccomp: like runc, each becomes a rule of its own (OR). */
          ret = 0;
          for (i = 0; i < sc->args_len && ret == 0; i++)
            ret = seccomp_rule_add_array (ctx, action, nr, 1, &conds[i]);
        }
      if (ret < 0)
        return ocirun_make_error (err, -ret, "add rule for syscall `%s`", sc->names[j]);
    }
  return 0;
}

static int
seccomp_load_inner (const oci_seccomp *seccomp, int *listener_fd, ocirun_error_t *err)
{
  cleanup_seccomp scmp_filter_ctx ctx = NULL;
  uint32_t default_action;
  size_t i;
  int ret;

  *listener_fd = -1;

  /* Loading the library here would take it from wherever this process
   * stands now: inside the container's rootfs, that is the container's
   * code running with the runtime's privileges. */
  if (!lib.loaded)
    return ocirun_make_error (err, -ELIBACC, "libseccomp was not loaded before entering the container");

  ret = parse_action (seccomp->default_action, seccomp->has_default_errno_ret, seccomp->default_errno_ret,
                      &default_action, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "defaultAction");
  if (default_action == SCMP_ACT_NOTIFY)
    return ocirun_make_error (err, -EINVAL, "SCMP_ACT_NOTIFY cannot be used as the default action");

  ctx = seccomp_init (default_action);
  if (ctx == NULL)
    return ocirun_make_error (err, -EINVAL, "seccomp_init");

  /* libseccomp sets no_new_privs on load by default; whether the process
   * gets it is process.noNewPrivileges' decision alone. */
  ret = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (ret < 0)
    return ocirun_make_error (err, -ret, "clear the no_new_privs attribute");

  for (i = 0; i < seccomp->architectures_len; i++)
    {
      uint32_t arch;

      ret = parse_arch (seccomp->architectures[i], &arch, err);
      if (ret < 0)
        return ret;
      ret = seccomp_arch_add (ctx, arch);
      if (ret < 0 && ret != -EEXIST)
        return ocirun_make_error (err, -ret, "add architecture `%s`", seccomp->architectures[i]);
    }

  for (i = 0; i < seccomp->flags_len; i++)
    {
      ret = set_flag (ctx, seccomp->flags[i], err);
      if (ret < 0)
        return ret;
    }

  for (i = 0; i < seccomp->syscalls_len; i++)
    {
      ret = add_syscall_rules (ctx, seccomp->syscalls[i], default_action, err);
      if (ret < 0)
        return ret;
    }

  ret = seccomp_load (ctx);
  if (ret < 0)
    return ocirun_make_error (err, -ret, "load the filter");

  if (ocirun_seccomp_uses_notify (seccomp))
    {
      /* The kernel made it CLOEXEC; libseccomp (2.5) only remembers the
       * number in its global state and never closes it: ours to hand on. */
      ret = seccomp_notify_fd (ctx);
      if (ret < 0)
        return ocirun_make_error (err, -ret, "get the notification listener fd");
      *listener_fd = ret;
    }
  return 0;
}

int
ocirun_seccomp_load (const oci_seccomp *seccomp, int *listener_fd, ocirun_error_t *err)
{
  int ret = seccomp_load_inner (seccomp, listener_fd, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "seccomp");
  return 0;
}
