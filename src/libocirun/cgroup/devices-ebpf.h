/* cgroup v2 has no devices.allow/deny: access to device nodes is decided by
 * BPF_PROG_TYPE_CGROUP_DEVICE programs attached to the cgroup. This turns
 * the OCI device rules into such a program (runc's semantics: the rules are
 * read in order and the last one that matches decides; nothing matching
 * means deny) and installs it with bpf(2), replacing the program installed
 * before. */
#ifndef OCIRUN_CGROUP_DEVICES_EBPF_H
#define OCIRUN_CGROUP_DEVICES_EBPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../error.h"

struct ocirun_device_rule
{
  bool allow;
  char type;            /* 'a', 'b', 'c' */
  int64_t major, minor; /* -1: any */
  const char *access;   /* a non-empty mix of r, w, m */
};

struct bpf_insn;

/* The program for rules; *out is malloc'd, *len instructions. */
void ocirun_devices_ebpf_program (const struct ocirun_device_rule *rules, size_t n, struct bpf_insn **out, size_t *len);

/* Loads the program for rules and attaches it to the cgroup directory
 * cgroup_fd (where names it in messages), atomically replacing the one
 * program ocirun attached before (BPF_F_REPLACE), or detaching every older
 * program once the new one is in. */
int ocirun_devices_ebpf_apply (int cgroup_fd, const char *where, const struct ocirun_device_rule *rules, size_t n,
                               ocirun_error_t *err);

/* How many device programs are attached to the cgroup itself. */
int ocirun_devices_ebpf_count (int cgroup_fd, ocirun_error_t *err);

#endif
