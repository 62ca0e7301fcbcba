/* doctor.h - the checks of `flox-runc doctor`.
 *
 * Owns: checking a node the way a platform engineer would before scheduling
 * pods: the real runtime, Nix and the store, privileges, the state
 * directory, FloxHub (and an environment, with a token when given), the
 * substituters and keys, CRIU for checkpoint/restore (notes only), and the engine registrations (containerd, read the
 * way containerd reads it: `containerd config dump` when a containerd binary
 * is there, else its config.toml and `imports` followed by lib/engineconf.c;
 * CRI-O's crio.conf and drop-ins).  Each finding is one line, each problem
 * with its fix, handed to a callback; the caller prints them.
 */
#ifndef FRC_DOCTOR_H
#define FRC_DOCTOR_H

#include "config.h"
#include "engineconf.h"
#include "error.h"

struct frc_doctor_opts
{
  const char *containerd_config; /* NULL: /etc/containerd/config.toml when it exists */
  const char *crio_config; /* one CRI-O file; NULL: /etc/crio/crio.conf and crio.conf.d */
  const char *containerd_binary; /* NULL: `containerd` from PATH; "" : do not run containerd */
  const char *token; /* the floxhub token, or NULL */
  const char *environment; /* OWNER/NAME[:N] to check, or NULL */
  frc_finding_fn report;
  void *data;
};

/* Runs every check; returns the number of problems (never fails: a check
 * that cannot run is a problem). */
int frc_doctor_run(const struct frc_config *c, const struct frc_doctor_opts *o);

/* The engine checks alone (also used by the installer and the tests).  is_self
 * data: NULL compares with this flox-runc (frc_runtime_is_self). */
int frc_doctor_engines(const struct frc_doctor_opts *o);

/* The major version of a containerd binary (`containerd --version`), 0 when
 * it cannot tell. */
int frc_containerd_major(const char *containerd);

#endif
