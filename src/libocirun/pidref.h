/* A process the runtime is not necessarily the parent of (the container's
 * init for kill, delete, exec and events), held by a pidfd where the kernel
 * has pidfd_open (Linux 5.3). Older kernels have only the pid: it is checked
 * against the process's start time before each use, the way runc does, which
 * leaves a small window for a recycled pid that a pidfd closes. */
#ifndef OCIRUN_PIDREF_H
#define OCIRUN_PIDREF_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ocirun_pidref
{
  pid_t pid;
  uint64_t start_time;
  int fd; /* pidfd, -1 without one */
};

/* 0, or -ESRCH when the process is gone or pid names another one now, or
 * another -errno from pidfd_open. */
int ocirun_pidref_open (struct ocirun_pidref *r, pid_t pid, uint64_t start_time);
void ocirun_pidref_close (struct ocirun_pidref *r);
#define cleanup_pidref __attribute__ ((cleanup (ocirun_pidref_close)))

/* kill(2) on the process: 0, or -errno (-ESRCH: it is gone). */
int ocirun_pidref_signal (struct ocirun_pidref *r, int signo);
/* Still running (not exited, not replaced). */
bool ocirun_pidref_alive (struct ocirun_pidref *r);
/* Waits up to timeout_ms (-1: no limit) for the process to exit; true when it
 * has. */
bool ocirun_pidref_wait_exit (struct ocirun_pidref *r, int timeout_ms);

#endif
