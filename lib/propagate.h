/* propagate.h - the packages a Flox environment links because others
 * propagate them.
 *
 * Owns: Flox's rule (buildenv/builder.pl addPkg and buildEnv, flox/flox
 * 6536dac28; docs/flox-compatibility.md) for what a run and a dev
 * environment link besides the selected outputs: run follows each linked
 * path's nix-support/propagated-user-env-packages, dev also its
 * nix-support/propagated-build-inputs (skipping `-stubs` paths), both
 * recursively, each propagated path at 1000*p + n (p the priority of the
 * package that propagated it, multiplied only while below 1000; n builder.pl's
 * counter).  Reads only the realised store paths under <store_root>/nix/store,
 * never following a symlink; the lists are hostile input (bounded, validated).
 */
#ifndef FRC_PROPAGATE_H
#define FRC_PROPAGATE_H

#include <stddef.h>

#include "annotations.h"
#include "error.h"
#include "lockfile.h"

#define FRC_PROPAGATE_FILE_MAX (256u << 10) /* one nix-support file */

struct frc_propagated
{
  char *path; /* /nix/store/... */
  long priority;
};

/* Every path linked because another propagates it, in the order builder.pl
 * links them, each once.  store_root NULL means "/". */
int frc_propagate(const char *store_root, const struct frc_lockfile *l, enum frc_mode mode,
                  struct frc_propagated **out, size_t *n, frc_error_t *err);
void frc_propagated_free(struct frc_propagated *v, size_t n);

/* builder.pl's byPackageName order of two store paths (name, then version,
 * then the rest of the path). */
int frc_store_path_cmp(const char *a, const char *b);

#endif
