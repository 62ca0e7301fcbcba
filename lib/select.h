/* select.h - which containers flox-runc changes.
 *
 * Owns: the container's identity as the engine wrote it into the spec
 * (containerd CRI `io.kubernetes.cri.*`, CRI-O `io.kubernetes.cri-o.*` and
 * the kubelet's container-name label, cri-dockerd's sandbox type, the pod's
 * sandbox id), and the
 * decision for a create: a sandbox passes through untouched, a container named
 * in flox.dev/skip-containers passes through untouched, every other container
 * needs a valid flox.dev/environment (or the node's on_missing_environment
 * says passthrough), and any invalid flox.dev/... value fails the create.
 */
#ifndef FRC_SELECT_H
#define FRC_SELECT_H

#include <stdbool.h>

#include "annotations.h"
#include "config.h"
#include "spec.h"

struct frc_identity
{
  char *name; /* the Kubernetes container name, NULL when the engine gives none */
  bool sandbox;
  char *sandbox_id; /* the pod's sandbox (a valid container id), NULL when none */
};

enum frc_action
{
  FRC_ACTION_PASSTHROUGH,
  FRC_ACTION_FLOX,
};

struct frc_decision
{
  enum frc_action action;
  const char *reason; /* why, for the debug log */
  struct frc_identity id;
  struct frc_annotations ann; /* parsed only when action is FLOX */
};

void frc_identity_from_annotations(yajl_val annotations, struct frc_identity *out);
int frc_decide(yajl_val annotations, const struct frc_config *c, struct frc_decision *d,
               frc_error_t *err);
void frc_decision_release(struct frc_decision *d);
#define cleanup_decision __attribute__((cleanup(frc_decision_release)))

#endif
