/* mounts.h - the mounts flox-runc itself makes on the node.
 *
 * Owns: the private writable /nix of a `flox.dev/nix-mutable: "true"`
 * container: an overlay (through libmount, loaded on first use) whose lower
 * layer is the node's <store_root>/nix and whose upper and work layers live in
 * <state_dir>/overlays/<container key>/, mounted at .../merged and bound into
 * the container as /nix; unmounting and removing it; and mountinfo queries.
 * The node's store is never written through it.
 */
#ifndef FRC_MOUNTS_H
#define FRC_MOUNTS_H

#include <stdbool.h>

#include "config.h"
#include "error.h"

/* Creates and mounts the overlay for key; *dir is the overlay directory
 * (remove with frc_overlay_remove), *merged the mount point. */
int frc_overlay_create(const struct frc_config *c, const char *key, char **dir, char **merged,
                       frc_error_t *err);
/* Unmounts dir/merged if mounted and removes dir.  Missing is fine. */
int frc_overlay_remove(const char *dir, frc_error_t *err);
/* Whether path is a mount point (per /proc/self/mountinfo). */
bool frc_is_mountpoint(const char *path);

#endif
