/* container.h - the life of a Flox container on the node.
 *
 * Owns: create's orchestration (the decision, the pod's token, the
 * environment prepared by resolve -> lockfile -> materialise, the
 * container's GC root and writable /nix overlay, the spec's mounts and
 * process, the record, the spec saved last) and its undo: a failed create
 * gives back what it took and leaves config.json as the engine wrote it;
 * "does the runtime still have this container" (one rule for create, delete
 * and gc); the release of what create took once the container is gone
 * (delete, a foreground run, a stale record, gc); and the activation of an
 * exec's process from the record.  The cmd/ verbs parse arguments and call
 * one function here; what to exec afterwards stays theirs.
 */
#ifndef FRC_CONTAINER_H
#define FRC_CONTAINER_H

#include <stdbool.h>

#include "annotations.h"
#include "config.h"
#include "environment.h"
#include "error.h"
#include "hub.h"
#include "lockfile.h"
#include "log.h"
#include "record.h"
#include "runtime.h"

/* ---- the environment of owner/name[:N] on this node (create, prefetch) ---- */

struct frc_prepare_request
{
  const struct frc_config *config;
  const struct frc_logger *log;
  const struct frc_envref *ref;
  const char *token; /* checked by the caller; NULL: anonymous */
  bool has_mode; /* false: the manifest's options.activate.mode, else run */
  enum frc_mode mode;
  long long deadline_ns; /* CLOCK_MONOTONIC; 0: now + the config's deadline_seconds */
  const char *container_id; /* for the progress line of a create; NULL: none */
};

struct frc_prepared
{
  struct frc_resolved resolved;
  /* parsed for this system; when the environment was found on the node by
   * its record (frc_environment_find), only its mode and vars */
  struct frc_lockfile lock;
  size_t npkgs;
  struct frc_environment env;
  struct frc_env_request env_request; /* what env was materialised with */
  enum frc_mode mode;
  char ref[256]; /* owner/name:N as resolved, for messages */
};

/* Resolves the reference (lib/hub.h), finds the environment on the node by
 * its record (lib/environment.h frc_environment_find) or else parses its
 * lockfile for this node's system (lib/lockfile.h), picks the mode and
 * materialises the environment.  On error *out holds what it held so far:
 * release it. */
int frc_environment_prepare(const struct frc_prepare_request *req, struct frc_prepared *out,
                            frc_error_t *err);
void frc_prepared_release(struct frc_prepared *p);
#define cleanup_prepared __attribute__((cleanup(frc_prepared_release)))

/* ---- create, exec, delete ---- */

/* One call of the runtime about one container. */
struct frc_container_call
{
  const struct frc_config *config;
  const struct frc_logger *log;
  const char *root; /* the runtime's --root, NULL when the call has none */
  const char *id;
  /* restore: the checkpoint's directory (--image-path; runc's default
   * ./checkpoint).  NULL for every other call. */
  const char *restore_image;
};

/* create and run: loads <bundle>/config.json and decides.  *flox is false
 * when the container passes through (not a Flox container, or a live
 * container already has this id: the runtime refuses it, nothing of the
 * live one is touched); true when the environment is in place, the spec
 * rewritten and the record written: the caller then hands the call to the
 * runtime.  A record of a container the runtime no longer has is released
 * first. */
int frc_container_create(const struct frc_container_call *c, const char *bundle, bool *flox,
                         frc_error_t *err);
/* A restore is a create (c->restore_image set): the same spec, with the
 * closure always by spec mounts (runc runs no createContainer hook at
 * restore, and its CRIU maps each spec bind by its destination) and the
 * generation the checkpoint recorded (lib/criu.h). */

/* exec --process FILE: rewrites the process file with the container's
 * activation.  *flox is false when the container has no record, is in
 * flox.dev/skip-containers-exec or process is NULL (an inline command):
 * the call passes through unchanged. */
int frc_container_exec(const struct frc_container_call *c, const char *process, bool *flox,
                       frc_error_t *err);

/* delete: runs the runtime's delete (argv) as a child, then, once the
 * container is gone, releases what create took for it; for a pod sandbox
 * whose containers had a FLOX_ENV_CACHE, removes that.  *ran is false when
 * the id is neither (the caller passes the call through); otherwise
 * *status is the runtime's exit status. */
int frc_container_delete(const struct frc_container_call *c, char **argv, bool *ran, int *status,
                         frc_error_t *err);

/* A foreground `run`: runs the runtime (argv, keeping keep_fds fds after
 * stdio) as a child, then releases the container; *status is the
 * runtime's exit status. */
int frc_container_run(const struct frc_container_call *c, char **argv, int keep_fds, int *status,
                      frc_error_t *err);

/* ---- whether a container exists, and its release ---- */

enum frc_presence
{
  FRC_CONTAINER_LIVE, /* `state` succeeded */
  FRC_CONTAINER_GONE, /* `state` exited 1: what runc and crun do for an unknown id */
  FRC_CONTAINER_UNKNOWN, /* anything else (not started, killed, another status): keep it */
};

/* How long `state` may take before the runtime is killed and the answer
 * is FRC_CONTAINER_UNKNOWN (a hung runtime must not hang create, delete or
 * gc). */
#define FRC_STATE_TIMEOUT_SECONDS 10
/* Asks the runtime `[--root root] state id` (output discarded).  *status
 * (optional) receives its exit status, -1 when it could not be started,
 * FRC_RUNTIME_TIMED_OUT when it did not answer in time. */
enum frc_presence frc_container_presence(const struct frc_runtime *rt, const char *root,
                                         const char *id, int *status);

/* Releases what create took for the container of rec: the overlay, the GC
 * root, a per-container FLOX_ENV_CACHE and the record. */
int frc_container_release(const struct frc_config *config, const struct frc_logger *log,
                          const struct frc_record *rec, frc_error_t *err);

#endif
