#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

#include "devices-ebpf.h"
#include "../util.h"

#ifndef BPF_F_REPLACE
#define BPF_F_REPLACE (1U << 2)
#endif

#define ACC_ALL (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)

static struct bpf_insn
insn (uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
  struct bpf_insn i;
  memset (&i, 0, sizeof i);
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

static uint32_t
access_bits (const char *access)
{
  uint32_t a = 0;
  for (const char *p = access; p && *p; p++)
    a |= *p == 'r' ? BPF_DEVCG_ACC_READ : *p == 'w' ? BPF_DEVCG_ACC_WRITE : *p == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
  return a;
}

struct prog
{
  struct bpf_insn *v;
  size_t len, cap;
};

static void
emit (struct prog *p, struct bpf_insn i)
{
  if (p->len == p->cap)
    {
      p->cap = p->cap ? p->cap * 2 : 64;
      p->v = xrealloc (p->v, p->cap * sizeof *p->v);
    }
  p->v[p->len++] = i;
}

/* Registers once the prologue ran: r2 device type, r3 requested access,
 * r4 major, r5 minor (struct bpf_cgroup_dev_ctx); r1 is scratch. */
void
ocirun_devices_ebpf_program (const struct ocirun_device_rule *rules, size_t n, struct bpf_insn **out, size_t *len)
{
  struct prog p = { NULL, 0, 0 };
  bool catch_all = false;

  emit (&p, insn (BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0));
  emit (&p, insn (BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff));
  emit (&p, insn (BPF_LDX | BPF_W | BPF_MEM, BPF_REG_3, BPF_REG_1, 0, 0));
  emit (&p, insn (BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16));
  emit (&p, insn (BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 4, 0));
  emit (&p, insn (BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 8, 0));

  /* Last match wins: test the rules from the last one back, and stop at
   * the first that matches. */
  for (size_t k = n; k > 0; k--)
    {
      const struct ocirun_device_rule *r = &rules[k - 1];
      uint32_t acc = access_bits (r->access);
      bool check_type = r->type != 'a';
      bool check_acc = (acc & ACC_ALL) != ACC_ALL;
      bool check_major = check_type && r->major >= 0;
      bool check_minor = check_type && r->minor >= 0;
      /* Instructions of this block after each conditional jump, so that a
       * mismatch lands on the next block. */
      int16_t remaining = (int16_t)(check_type + 3 * check_acc + check_major + check_minor + 2);

      if (check_type)
        {
          remaining -= 1;
          emit (&p, insn (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, remaining,
                          r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
        }
      if (check_acc)
        {
          /* Every requested access must be one the rule names. */
          remaining -= 3;
          emit (&p, insn (BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
          emit (&p, insn (BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, (int32_t)(~acc & ACC_ALL)));
          emit (&p, insn (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, remaining, 0));
        }
      if (check_major)
        {
          remaining -= 1;
          emit (&p, insn (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, remaining, (int32_t)r->major));
        }
      if (check_minor)
        {
          remaining -= 1;
          emit (&p, insn (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, remaining, (int32_t)r->minor));
        }
      emit (&p, insn (BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r->allow ? 1 : 0));
      emit (&p, insn (BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
      /* A rule matching everything makes the ones before it unreachable. */
      if (!check_type && !check_acc)
        {
          catch_all = true;
          break;
        }
    }
  /* Nothing matched: deny (the verifier rejects this tail when a
   * catch-all rule already made it unreachable). */
  if (!catch_all)
    {
      emit (&p, insn (BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));
      emit (&p, insn (BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    }
  *out = p.v;
  *len = p.len;
}

static int
sys_bpf (int cmd, union bpf_attr *attr)
{
  return (int)syscall (SYS_bpf, cmd, attr, sizeof *attr);
}

static int
load (const struct bpf_insn *insns, size_t n, ocirun_error_t *err)
{
  static const char license[] = "Apache";
  char log[4096] = "";
  union bpf_attr attr;
  int fd;

  memset (&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = (uint32_t)n;
  attr.license = (uint64_t)(uintptr_t)license;
  fd = sys_bpf (BPF_PROG_LOAD, &attr);
  if (fd >= 0)
    return fd;
  if (errno != EACCES && errno != EINVAL)
    return ocirun_make_error (err, errno, "bpf: load the device program");
  /* Ask again with the verifier's log, for the message. */
  attr.log_buf = (uint64_t)(uintptr_t)log;
  attr.log_size = sizeof log;
  attr.log_level = 1;
  fd = sys_bpf (BPF_PROG_LOAD, &attr);
  if (fd >= 0)
    return fd;
  log[sizeof log - 1] = '\0';
  return ocirun_make_error (err, errno, "bpf: load the device program (verifier: %s)", log);
}

/* The ids of the device programs attached to the cgroup itself. */
static int
query (int cgroup_fd, uint32_t *ids, uint32_t *n, ocirun_error_t *err)
{
  union bpf_attr attr;

  memset (&attr, 0, sizeof attr);
  attr.query.target_fd = (uint32_t)cgroup_fd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
  attr.query.prog_cnt = *n;
  if (sys_bpf (BPF_PROG_QUERY, &attr) < 0)
    return ocirun_make_error (err, errno, "bpf: query the device programs");
  *n = attr.query.prog_cnt;
  return 0;
}

int
ocirun_devices_ebpf_count (int cgroup_fd, ocirun_error_t *err)
{
  uint32_t ids[64], n = 64;
  int ret = query (cgroup_fd, ids, &n, err);
  return ret < 0 ? ret : (int)n;
}

static int
prog_fd_by_id (uint32_t id)
{
  union bpf_attr attr;
  memset (&attr, 0, sizeof attr);
  attr.prog_id = id;
  return sys_bpf (BPF_PROG_GET_FD_BY_ID, &attr);
}

static int
attach (int cgroup_fd, int prog_fd, int replace_fd)
{
  union bpf_attr attr;
  memset (&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)cgroup_fd;
  attr.attach_bpf_fd = (uint32_t)prog_fd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (replace_fd >= 0)
    {
      attr.attach_flags |= BPF_F_REPLACE;
      attr.replace_bpf_fd = (uint32_t)replace_fd;
    }
  return sys_bpf (BPF_PROG_ATTACH, &attr);
}

static int
detach (int cgroup_fd, int prog_fd)
{
  union bpf_attr attr;
  memset (&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)cgroup_fd;
  attr.attach_bpf_fd = (uint32_t)prog_fd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  return sys_bpf (BPF_PROG_DETACH, &attr);
}

int
ocirun_devices_ebpf_apply (int cgroup_fd, const char *where, const struct ocirun_device_rule *rules, size_t n,
                           ocirun_error_t *err)
{
  cleanup_free struct bpf_insn *insns = NULL;
  cleanup_close int prog = -1;
  uint32_t ids[64], nids = 64;
  int olds[64];
  size_t nolds = 0, len = 0;
  int ret;

  ocirun_devices_ebpf_program (rules, n, &insns, &len);
  prog = load (insns, len, err);
  if (prog < 0)
    return ocirun_error_prefix (err, "cgroup `%s` devices", where);

  ret = query (cgroup_fd, ids, &nids, err);
  if (ret < 0)
    return ocirun_error_prefix (err, "cgroup `%s` devices", where);
  if (nids > 64)
    nids = 64;
  for (uint32_t i = 0; i < nids; i++)
    {
      int fd = prog_fd_by_id (ids[i]);
      if (fd >= 0)
        olds[nolds++] = fd;
    }

  /* With exactly one old program the swap is atomic: no moment without a
   * filter, none with two. Otherwise (or on kernels before 5.6) the new one
   * goes in first, so the cgroup is never left unfiltered. */
  ret = -1;
  if (nolds == 1)
    ret = attach (cgroup_fd, prog, olds[0]);
  if (ret < 0)
    {
      if (attach (cgroup_fd, prog, -1) < 0)
        {
          ret = ocirun_make_error (err, errno, "cgroup `%s` devices: bpf: attach the device program", where);
          goto out;
        }
      for (size_t i = 0; i < nolds; i++)
        if (detach (cgroup_fd, olds[i]) < 0 && errno != ENOENT)
          {
            ret = ocirun_make_error (err, errno, "cgroup `%s` devices: bpf: detach the old device program", where);
            goto out;
          }
    }
  ret = 0;
out:
  for (size_t i = 0; i < nolds; i++)
    close (olds[i]);
  return ret;
}
