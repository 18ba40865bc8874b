#include "config.h"
#include "ocirun.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* `runc spec` output (runc 1.1), with our runtime-spec version. Kept as JSON
 * text so the default is readable and reviewable against runc's. */
static const char default_spec[]
    = "{\n"
      "  \"ociVersion\": \"1.3.0\",\n"
      "  \"process\": {\n"
      "    \"terminal\": true,\n"
      "    \"user\": {\"uid\": 0, \"gid\": 0},\n"
      "    \"args\": [\"sh\"],\n"
      "    \"env\": [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \"TERM=xterm\"],\n"
      "    \"cwd\": \"/\",\n"
      "    \"capabilities\": {\n"
      "      \"bounding\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
      "      \"effective\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
      "      \"permitted\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
      "      \"ambient\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]\n"
      "    },\n"
      "    \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}],\n"
      "    \"noNewPrivileges\": true\n"
      "  },\n"
      "  \"root\": {\"path\": \"rootfs\", \"readonly\": true},\n"
      "  \"hostname\": \"runc\",\n"
      "  \"mounts\": [\n"
      "    {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},\n"
      "    {\n"
      "      \"destination\": \"/dev\",\n"
      "      \"type\": \"tmpfs\",\n"
      "      \"source\": \"tmpfs\",\n"
      "      \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]\n"
      "    },\n"
      "    {\n"
      "      \"destination\": \"/dev/pts\",\n"
      "      \"type\": \"devpts\",\n"
      "      \"source\": \"devpts\",\n"
      "      \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\", \"gid=5\"]\n"
      "    },\n"
      "    {\n"
      "      \"destination\": \"/dev/shm\",\n"
      "      \"type\": \"tmpfs\",\n"
      "      \"source\": \"shm\",\n"
      "      \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"]\n"
      "    },\n"
      "    {\n"
      "      \"destination\": \"/dev/mqueue\",\n"
      "      \"type\": \"mqueue\",\n"
      "      \"source\": \"mqueue\",\n"
      "      \"options\": [\"nosuid\", \"noexec\", \"nodev\"]\n"
      "    },\n"
      "    {\n"
      "      \"destination\": \"/sys\",\n"
      "      \"type\": \"sysfs\",\n"
      "      \"source\": \"sysfs\",\n"
      "      \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"]\n"
      "    },\n"
      "    {\n"
      "      \"destination\": \"/sys/fs/cgroup\",\n"
      "      \"type\": \"cgroup\",\n"
      "      \"source\": \"cgroup\",\n"
      "      \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\"]\n"
      "    }\n"
      "  ],\n"
      "  \"linux\": {\n"
      "    \"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]},\n"
      "    \"namespaces\": [\n"
      "      {\"type\": \"pid\"},\n"
      "      {\"type\": \"network\"},\n"
      "      {\"type\": \"ipc\"},\n"
      "      {\"type\": \"uts\"},\n"
      "      {\"type\": \"mount\"}\n"
      "    ],\n"
      "    \"maskedPaths\": [\n"
      "      \"/proc/acpi\",\n"
      "      \"/proc/asound\",\n"
      "      \"/proc/kcore\",\n"
      "      \"/proc/keys\",\n"
      "      \"/proc/latency_stats\",\n"
      "      \"/proc/timer_list\",\n"
      "      \"/proc/timer_stats\",\n"
      "      \"/proc/sched_debug\",\n"
      "      \"/sys/firmware\",\n"
      "      \"/proc/scsi\"\n"
      "    ],\n"
      "    \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\", \"/proc/sysrq-trigger\"]\n"
      "  }\n"
      "}\n";

static oci_id_mapping **
single_mapping (unsigned host_id)
{
  oci_id_mapping **m = xmalloc0 (2 * sizeof *m);
  m[0] = xmalloc0 (sizeof **m);
  m[0]->host_id = host_id;
  m[0]->has_host_id = m[0]->has_container_id = true;
  m[0]->size = 1;
  m[0]->has_size = true;
  return m;
}

static void
drop_string (char **v, size_t *len, const char *s)
{
  for (size_t i = 0; i < *len; i++)
    if (strcmp (v[i], s) == 0)
      {
        free (v[i]);
        memmove (&v[i], &v[i + 1], (*len - i) * sizeof *v); /* keeps the NULL */
        (*len)--;
        return;
      }
}

/* `runc spec --rootless` is the default made fit for an unprivileged user, as
 * runc derives it: a user namespace mapping root to the caller instead of a
 * network namespace, /sys bind-mounted (a new sysfs needs a network namespace
 * owned by the user namespace), no devices cgroup rule and no gid=5 on devpts
 * (the caller cannot set either). */
static void
make_rootless (oci_config *c)
{
  oci_linux *l = c->linux;

  for (size_t i = 0; i < l->namespaces_len; i++)
    if (strcmp (l->namespaces[i]->type, "network") == 0)
      {
        free (l->namespaces[i]->type);
        l->namespaces[i]->type = xstrdup ("user");
        /* runc lists the user namespace last. */
        oci_namespace *ns = l->namespaces[i];
        memmove (&l->namespaces[i], &l->namespaces[i + 1], (l->namespaces_len - i - 1) * sizeof *l->namespaces);
        l->namespaces[l->namespaces_len - 1] = ns;
        break;
      }
  l->uid_mappings = single_mapping ((unsigned)geteuid ());
  l->uid_mappings_len = 1;
  l->has_uid_mappings = true;
  l->gid_mappings = single_mapping ((unsigned)getegid ());
  l->gid_mappings_len = 1;
  l->has_gid_mappings = true;
  oci_resources_free (l->resources);
  l->resources = NULL;

  for (size_t i = 0; i < c->mounts_len; i++)
    {
      oci_mount *m = c->mounts[i];
      if (strcmp (m->destination, "/dev/pts") == 0)
        drop_string (m->options, &m->options_len, "gid=5");
      else if (strcmp (m->destination, "/sys") == 0)
        {
          free (m->type);
          free (m->source);
          m->type = xstrdup ("none");
          m->source = xstrdup ("/sys");
          m->options = xrealloc (m->options, (m->options_len + 2) * sizeof *m->options);
          memmove (&m->options[1], &m->options[0], (m->options_len + 1) * sizeof *m->options);
          m->options[0] = xstrdup ("rbind");
          m->options_len++;
        }
    }
}

oci_config *
ocirun_default_spec (bool rootless)
{
  ocispec_errors errs = { NULL, 0 };
  oci_config *c = oci_config_parse_data (default_spec, strlen (default_spec), &errs);

  /* The text is a constant of this file; a parse failure is a build bug,
   * caught by the unit tests. */
  ocispec_errors_free (&errs);
  if (c && rootless)
    make_rootless (c);
  return c;
}
