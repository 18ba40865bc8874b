/* linux.netDevices: moving existing host network devices into the
 * container's network namespace (renamed when a name is given), and back
 * to the runtime's namespace on delete when that namespace outlives the
 * container. Plain rtnetlink: one RTM_NEWLINK per device. */
#include "config.h"
#include "netdev.h"
#include "util.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

struct nlreq
{
  struct nlmsghdr nh;
  struct ifinfomsg ifi;
  char attrs[256];
};

static void
add_attr (struct nlreq *r, unsigned short type, const void *data, size_t len)
{
  struct rtattr *rta = (struct rtattr *)((char *)r + NLMSG_ALIGN (r->nh.nlmsg_len));
  rta->rta_type = type;
  rta->rta_len = RTA_LENGTH (len);
  memcpy (RTA_DATA (rta), data, len);
  r->nh.nlmsg_len = NLMSG_ALIGN (r->nh.nlmsg_len) + RTA_ALIGN (rta->rta_len);
}

/* Sends one RTM_NEWLINK for ifindex with a namespace attribute (a pid or an
 * fd) and an optional new name, and reads the kernel's ack. */
static int
move_link (int ifindex, unsigned short ns_attr, uint32_t ns_value, const char *new_name, ocirun_error_t *err)
{
  cleanup_close int sk = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  struct nlreq req = { 0 };
  char buf[1024];
  ssize_t n;

  if (sk < 0)
    return ocirun_make_error (err, errno, "netlink socket");
  req.nh.nlmsg_len = NLMSG_LENGTH (sizeof (struct ifinfomsg));
  req.nh.nlmsg_type = RTM_NEWLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = ifindex;
  add_attr (&req, ns_attr, &ns_value, sizeof ns_value);
  if (new_name && *new_name)
    add_attr (&req, IFLA_IFNAME, new_name, strlen (new_name) + 1);

  if (sendto (sk, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
    return ocirun_make_error (err, errno, "netlink send");
  n = TEMP_FAILURE_RETRY_INT (recv (sk, buf, sizeof buf, 0));
  if (n < 0)
    return ocirun_make_error (err, errno, "netlink receive");
  for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK (h, (size_t)n); h = NLMSG_NEXT (h, n))
    if (h->nlmsg_type == NLMSG_ERROR)
      {
        struct nlmsgerr *e = NLMSG_DATA (h);
        if (e->error)
          return ocirun_make_error (err, -e->error, "netlink RTM_NEWLINK");
        return 0;
      }
  return ocirun_make_error (err, -EPROTO, "netlink: no acknowledgement");
}

static bool
valid_ifname (const char *n)
{
  size_t len = strlen (n);
  if (len == 0 || len >= IFNAMSIZ || strcmp (n, ".") == 0 || strcmp (n, "..") == 0)
    return false;
  for (const char *p = n; *p; p++)
    if (*p == '/' || *p == ':' || *p <= ' ')
      return false;
  return true;
}

int
ocirun_netdev_validate (const oci_linux *linux, bool has_netns, ocirun_error_t *err)
{
  const oci_map_net_device *m = linux ? linux->net_devices : NULL;

  if (m == NULL || m->len == 0)
    return 0;
  if (!has_netns)
    return ocirun_make_error (err, -EINVAL, "linux.netDevices: needs a network namespace in linux.namespaces");
  for (size_t i = 0; i < m->len; i++)
    {
      const char *name = m->values[i] && m->values[i]->name ? m->values[i]->name : m->keys[i];
      if (!valid_ifname (m->keys[i]))
        return ocirun_make_error (err, -EINVAL, "linux.netDevices: invalid device name `%s`", m->keys[i]);
      if (!valid_ifname (name))
        return ocirun_make_error (err, -EINVAL, "linux.netDevices.%s.name: invalid interface name `%s`", m->keys[i],
                                  name);
    }
  return 0;
}

int
ocirun_netdev_move_in (const oci_linux *linux, pid_t pid, ocirun_error_t *err)
{
  const oci_map_net_device *m = linux ? linux->net_devices : NULL;

  for (size_t i = 0; m && i < m->len; i++)
    {
      const char *name = m->values[i] && m->values[i]->name ? m->values[i]->name : NULL;
      unsigned idx = if_nametoindex (m->keys[i]);
      if (idx == 0)
        return ocirun_make_error (err, errno, "linux.netDevices: host device `%s`", m->keys[i]);
      if (move_link (idx, IFLA_NET_NS_PID, (uint32_t)pid, name, err) < 0)
        return ocirun_error_prefix (err, "linux.netDevices: move `%s` into the container", m->keys[i]);
    }
  return 0;
}

int
ocirun_netdev_move_back (const oci_linux *linux, const char *netns_path, ocirun_error_t *err)
{
  const oci_map_net_device *m = linux ? linux->net_devices : NULL;
  cleanup_close int host_ns = -1, target_ns = -1;
  int pipefd[2];
  pid_t pid;
  int st;
  char msg[512] = "";

  if (m == NULL || m->len == 0 || netns_path == NULL)
    return 0;
  host_ns = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  target_ns = open (netns_path, O_RDONLY | O_CLOEXEC);
  if (host_ns < 0 || target_ns < 0)
    return ocirun_make_error (err, errno, "linux.netDevices: open network namespace");
  if (pipe2 (pipefd, O_CLOEXEC) < 0)
    return ocirun_make_error (err, errno, "pipe");

  /* setns() in a child, so that this process stays in its own namespace. */
  pid = fork ();
  if (pid < 0)
    {
      close (pipefd[0]);
      close (pipefd[1]);
      return ocirun_make_error (err, errno, "fork");
    }
  if (pid == 0)
    {
      cleanup_error ocirun_error_t e = NULL;
      close (pipefd[0]);
      if (setns (target_ns, CLONE_NEWNET) < 0)
        ocirun_make_error (&e, errno, "join `%s`", netns_path);
      for (size_t i = 0; e == NULL && i < m->len; i++)
        {
          const char *name = m->values[i] && m->values[i]->name ? m->values[i]->name : m->keys[i];
          unsigned idx = if_nametoindex (name);
          /* A device already gone (deleted with its namespace) is fine. */
          if (idx == 0)
            continue;
          if (move_link (idx, IFLA_NET_NS_FD, (uint32_t)host_ns, m->keys[i], &e) < 0)
            ocirun_error_prefix (&e, "move `%s` back as `%s`", name, m->keys[i]);
        }
      if (e)
        {
          ocirun_write_all (pipefd[1], e->msg, strlen (e->msg));
          _exit (1);
        }
      _exit (0);
    }
  close (pipefd[1]);
  ocirun_read_all (pipefd[0], msg, sizeof msg - 1);
  close (pipefd[0]);
  TEMP_FAILURE_RETRY_INT (waitpid (pid, &st, 0));
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    return ocirun_make_error (err, -EIO, "linux.netDevices: %s", msg[0] ? msg : "restore failed");
  return 0;
}
