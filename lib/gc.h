/* gc.h - what `flox-runc gc` removes.
 *
 * Owns: finding and releasing what no live container needs any more:
 * records of containers the real runtime no longer knows (a crashed node),
 * their GC roots and writable /nix overlays; overlays and container roots
 * that no record names; built environments unused for gc_max_age_seconds
 * that no container record or container root refers to (their GC roots,
 * views, Nix databases and records: the node's Nix GC then frees the
 * paths);
 * the FLOX_ENV_CACHE directories of deleted pod sandboxes (none of whose
 * containers a live record names: CRI-O may run a pod without a sandbox
 * container) and containers;
 * the symlinks of the node's pool that no tree uses (lib/linkpool.h);
 * leftovers of interrupted builds, and temporary files of interrupted
 * writes (".<name>.XXXXXX" of write_file_atomic).  The node's own root
 * (gcroots/flox-runc/node: its bash, lib/nodebash.h) is never touched.  Anything younger than a
 * grace period is left alone, so a create in flight is never disturbed.
 * A failure to remove one thing is reported and counted, and gc carries on
 * with the rest; frc_gc_run then fails naming the first.
 */
#ifndef FRC_GC_H
#define FRC_GC_H

#include <stdbool.h>

#include "config.h"
#include "log.h"
#include "runtime.h"

#define FRC_GC_GRACE_SECONDS 120

struct frc_gc_opts
{
  const struct frc_config *config;
  const struct frc_runtime *runtime; /* to ask whether a container still exists */
  const struct frc_logger *log; /* optional: debug lines of releases */
  long max_age_seconds; /* environments unused this long are evicted */
  bool dry_run;
  void (*report)(const char *what, const char *path, void *data);
  void *data;
};

struct frc_gc_stats
{
  unsigned containers, overlays, container_roots, environments, leftovers, env_caches, failures;
  unsigned shared_links; /* symlinks of the pool no tree uses (lib/linkpool.h) */
};

int frc_gc_run(const struct frc_gc_opts *o, struct frc_gc_stats *stats, frc_error_t *err);

#endif
