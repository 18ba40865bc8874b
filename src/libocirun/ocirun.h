/* The public face of libocirun: what the CLI (src/) calls. One request struct
 * per invocation; every entry point returns 0 or a negative errno with *err
 * set. Nothing here prints or exits: output comes back as values, and
 * diagnostics go through the logger the caller installs. */
#ifndef OCIRUN_H
#define OCIRUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "log.h"
#include "ocispec.h"

struct ocirun_context
{
  const char *root;           /* state root, e.g. /run/ocirun */
  const char *id;             /* container id (validated by ocirun_validate_id) */
  const char *bundle;         /* bundle directory (create/run/check); NULL = cwd */
  const char *config_file;    /* config file name inside bundle, default "config.json" */
  const char *console_socket; /* --console-socket */
  const char *pid_file;       /* --pid-file */
  const char *notify_socket;  /* NOTIFY_SOCKET from the environment, if any */
  const char *criu;           /* --criu path (checkpoint/restore) */
  int preserve_fds;           /* --preserve-fds N: fds 3+L..3+L+N-1 go to the container */
  int listen_fds;             /* L socket-activation fds (LISTEN_FDS for this pid): fds 3..3+L-1 */
  bool systemd_cgroup;        /* --systemd-cgroup */
  bool rootless;              /* --rootless=true, or detected */
  bool no_pivot;              /* --no-pivot */
  bool no_new_keyring;        /* --no-new-keyring */
  bool detach;                /* run --detach */
  bool keep;                  /* run --keep: do not delete after exit */
  struct ocirun_logger *log;  /* where debug/warning lines go; may be NULL */
};

/* The default state root for this user (/run/ocirun, or
 * $XDG_RUNTIME_DIR/ocirun when rootless). Caller frees. */
char *ocirun_default_root (bool rootless);

/* Rejects ids runc rejects (empty, `.`/`..`, `/`, characters outside
 * [A-Za-z0-9_+.-], longer than 1024). */
int ocirun_validate_id (const char *id, ocirun_error_t *err);

/* Lifecycle. create returns once the init waits for start and the pid file is
 * written; run = create + start + wait and stores the container's exit status
 * (128+signal when killed) in *exit_status. */
int ocirun_container_create (struct ocirun_context *ctx, ocirun_error_t *err);
int ocirun_container_start (struct ocirun_context *ctx, ocirun_error_t *err);
int ocirun_container_run (struct ocirun_context *ctx, int *exit_status, ocirun_error_t *err);
int ocirun_container_kill (struct ocirun_context *ctx, int signo, bool all, ocirun_error_t *err);
int ocirun_container_delete (struct ocirun_context *ctx, bool force, ocirun_error_t *err);

/* `exec`: a new process in a running container. Without process_file, the
 * container's own process is the base and the other fields override it, as
 * runc exec does. Without detach, *exit_status gets the process's exit
 * status (128+signal when killed); when the process could not be started it
 * is 255 (runc's exit code then) along with the error. */
struct ocirun_exec_request
{
  const char *process_file; /* --process: a runtime-spec process object */
  char **args;              /* COMMAND ARGS... */
  size_t n_args;
  char **env; /* --env, appended */
  size_t n_env;
  const char *cwd;  /* --cwd */
  const char *user; /* --user uid[:gid] */
  char **additional_gids;
  size_t n_additional_gids;
  char **caps; /* --cap, added to bounding/effective/permitted */
  size_t n_caps;
  char **cgroups; /* --cgroup [controller:]path */
  size_t n_cgroups;
  const char *process_label;
  const char *apparmor;
  const char *console_socket;
  const char *pid_file;
  int preserve_fds;
  bool tty;
  bool detach;
  bool no_new_privs;
  bool ignore_paused;
};
int ocirun_container_exec (struct ocirun_context *ctx, const struct ocirun_exec_request *req, int *exit_status,
                           ocirun_error_t *err);

/* `checkpoint` and `restore` through the criu binary (ctx->criu, default
 * "criu" in PATH), with runc's options and image layout. checkpoint of a
 * running (or paused) container: the container is gone afterwards unless
 * leave_running or pre_dump. restore makes container ctx->id from the
 * bundle and the image, running; unless ctx->detach it then waits as `run`
 * does and stores the exit status in *exit_status. */
struct ocirun_criu_request
{
  const char *image_path;          /* default: ./checkpoint */
  const char *work_path;           /* logs; default: the image path */
  const char *parent_path;         /* checkpoint: images of a pre-dump */
  const char *manage_cgroups_mode; /* soft (criu's default), full, strict, ignore */
  const char *page_server;         /* checkpoint: ADDRESS:PORT */
  const char *lsm_profile;         /* restore: TYPE:NAME */
  const char *lsm_mount_context;   /* restore */
  char **empty_ns;                 /* "network" only, as runc */
  size_t n_empty_ns;
  int status_fd; /* -1, or the fd criu signals once lazy pages are served */
  bool leave_running, pre_dump;
  bool tcp_established, ext_unix_sk, shell_job, file_locks, auto_dedup, lazy_pages;
  bool no_subreaper; /* restore */
};
int ocirun_container_checkpoint (struct ocirun_context *ctx, const struct ocirun_criu_request *req,
                                 ocirun_error_t *err);
int ocirun_container_restore (struct ocirun_context *ctx, const struct ocirun_criu_request *req, int *exit_status,
                              ocirun_error_t *err);

/* Freezes / thaws every process of the container (runc pause / resume). */
int ocirun_container_pause (struct ocirun_context *ctx, ocirun_error_t *err);
int ocirun_container_resume (struct ocirun_context *ctx, ocirun_error_t *err);

/* `update`: applies what r sets (memory, cpu, pids, blockIO.weight,
 * unified; zero or absent values leave a setting alone, as runc does) to
 * the container's cgroup and records it in the stored config. */
int ocirun_container_update (struct ocirun_context *ctx, const oci_resources *r, ocirun_error_t *err);

/* `events --stats`: one line of runc's event JSON ({"type":"stats",...}). */
int ocirun_container_stats (struct ocirun_context *ctx, char **json, ocirun_error_t *err);

/* `events`: calls fn with a stats line every interval_ms and an
 * {"type":"oom","id":ID} line for every OOM, until the container stops
 * (returns 0) or fn returns < 0 (returned as is). */
typedef int (*ocirun_event_fn) (const char *line, void *data);
int ocirun_container_events (struct ocirun_context *ctx, uint64_t interval_ms, ocirun_event_fn fn, void *data,
                             ocirun_error_t *err);

/* runc's `state` document for one container. */
int ocirun_container_state (struct ocirun_context *ctx, oci_runc_state **out, ocirun_error_t *err);

/* Every container under ctx->root, sorted by id. */
struct ocirun_list
{
  oci_runc_state **items;
  size_t len;
};
int ocirun_container_list (struct ocirun_context *ctx, struct ocirun_list *out, ocirun_error_t *err);
void ocirun_list_free (struct ocirun_list *l);

/* Host pids of every process in the container's cgroup. */
int ocirun_container_pids (struct ocirun_context *ctx, pid_t **pids, size_t *len, ocirun_error_t *err);

/* Parses a signal given as a name (KILL, SIGKILL, kill) or a number. */
int ocirun_parse_signal (const char *s, int *signo, ocirun_error_t *err);

/* The config `ocirun spec` writes (runc's default, or its rootless variant). */
oci_config *ocirun_default_spec (bool rootless);

/* libseccomp's version; loads the library (it is only loaded for containers
 * with a filter otherwise). */
int ocirun_seccomp_version (unsigned *major, unsigned *minor, unsigned *micro, ocirun_error_t *err);

/* features.json describing what this build really supports. */
oci_features *ocirun_features (void);

/* Validates a bundle without starting anything; appends every problem found
 * to *problems (one message each) and returns how many there were (>= 0), or
 * a negative errno when the check itself could not run. */
struct ocirun_problems
{
  char **msgs;
  size_t len;
};
int ocirun_check_bundle (const char *bundle, const char *config_file, bool rootless, struct ocirun_problems *problems,
                         ocirun_error_t *err);
void ocirun_problems_add (struct ocirun_problems *p, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void ocirun_problems_free (struct ocirun_problems *p);

#endif
