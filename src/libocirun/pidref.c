#include "config.h"
#include "pidref.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Without a pidfd, an exit is noticed by looking again this often. */
#define POLL_MS 10

int
ocirun_pidref_open (struct ocirun_pidref *r, pid_t pid, uint64_t start_time)
{
  r->pid = pid;
  r->start_time = start_time;
  r->fd = (int)syscall (SYS_pidfd_open, pid, 0);
  if (r->fd < 0 && errno != ENOSYS)
    return errno == ESRCH ? -ESRCH : -errno;
  /* With the pidfd taken first, a matching start time proves it is the
   * process we mean for as long as the pidfd is open. */
  if (!ocirun_pid_alive (pid, start_time))
    {
      ocirun_pidref_close (r);
      return -ESRCH;
    }
  return 0;
}

void
ocirun_pidref_close (struct ocirun_pidref *r)
{
  if (r->fd >= 0)
    close (r->fd);
  r->fd = -1;
}

int
ocirun_pidref_signal (struct ocirun_pidref *r, int signo)
{
  if (r->fd >= 0)
    {
      if (syscall (SYS_pidfd_send_signal, r->fd, signo, NULL, 0) == 0)
        return 0;
      if (errno != ENOSYS)
        return -errno;
    }
  else if (!ocirun_pid_alive (r->pid, r->start_time))
    return -ESRCH;
  return kill (r->pid, signo) == 0 ? 0 : -errno;
}

bool
ocirun_pidref_alive (struct ocirun_pidref *r)
{
  if (r->fd >= 0)
    {
      struct pollfd p = { .fd = r->fd, .events = POLLIN };
      return TEMP_FAILURE_RETRY_INT (poll (&p, 1, 0)) == 0;
    }
  return ocirun_pid_alive (r->pid, r->start_time);
}

bool
ocirun_pidref_wait_exit (struct ocirun_pidref *r, int timeout_ms)
{
  uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : ocirun_now_ms () + (uint64_t)timeout_ms;

  if (r->fd >= 0)
    {
      struct pollfd p = { .fd = r->fd, .events = POLLIN };
      return TEMP_FAILURE_RETRY_INT (poll (&p, 1, timeout_ms)) > 0;
    }
  for (;;)
    {
      uint64_t now;
      struct timespec nap = { 0, POLL_MS * 1000000L };

      if (!ocirun_pid_alive (r->pid, r->start_time))
        return true;
      now = ocirun_now_ms ();
      if (now >= deadline)
        return false;
      if (deadline - now < POLL_MS)
        nap.tv_nsec = (long)(deadline - now) * 1000000L;
      nanosleep (&nap, NULL);
    }
}
