/* mounts.h - what a Flox container sees at /nix, and the mounts flox-runc
 * itself makes on the node.
 *
 * Owns: the per-environment view <state_dir>/views/<key>/, an empty skeleton
 * built once with the environment (store/<name> of every closure path as an
 * empty mount point, var/flox-runc/envs/<key>/; symlink store paths copied as
 * they are; everything mode 0555) that the spec binds read-only at /nix, with
 * one read-only non-recursive bind per closure path (made by the runtime's
 * createContainer hook, lib/bindhook.h) and one of the tree on top
 * (lib/container.c): the container sees its closure and nothing else of the
 * node's /nix, and no mount is made on the node for it.
 * And the private writable /nix of a `flox.dev/nix-mutable: "true"`
 * container: a tmpfs of nix_mutable_max_bytes (nosuid, nodev) at
 * <state_dir>/overlays/<container key>/ holding the upper and work layers of
 * an overlay (through libmount, loaded on first use) whose lower layer is the
 * view, mounted at .../merged and bound into the container as /nix, with
 * a copy of the environment's Nix database (lib/environment.h) in its upper
 * layer, so Nix inside finds exactly the closure registered;
 * unmounting and removing it; and mountinfo queries.  The node's store is
 * never written through it.
 */
#ifndef FRC_MOUNTS_H
#define FRC_MOUNTS_H

#include <stdbool.h>

#include "config.h"
#include "error.h"

/* <state_dir>/views/<env key> (malloc'd). */
char *frc_view_dir(const struct frc_config *c, const char *env_key);
/* Builds the view of env_key whose closure is closure (NULL-terminated
 * store paths), unless one is in place already: a key names one closure,
 * and a view in use must never be removed (removing a directory that is a
 * mount point in a running container's namespace detaches its mounts).
 * *binds gets the closure paths a container must bind (all but the
 * symlinks, which the view holds).  A view is built aside and moved into
 * place whole, not synced: one in place that misses an entry (left by a
 * crash of the node) is built anew (docs/design.md, "Durability"). */
int frc_view_build(const struct frc_config *c, const char *env_key, char *const *closure,
                   char ***binds, frc_error_t *err);
/* (the view's list of binds: frc_view_each_bind, lib/bindrun.h) */
/* Removes the view of env_key and its Nix database; missing is fine. */
int frc_view_remove(const struct frc_config *c, const char *env_key, frc_error_t *err);

/* Mounts the tmpfs and the overlay for the container key, whose lower layer
 * is the view lower, with the Nix database files of the directory nix_db
 * (NULL: none) copied into its upper var/nix/db; *dir is the overlay
 * directory (remove with frc_overlay_remove), *merged the overlay's mount
 * point. */
int frc_overlay_create(const struct frc_config *c, const char *key, const char *lower,
                       const char *nix_db, char **dir, char **merged, frc_error_t *err);
/* Unmounts dir/merged and the tmpfs at dir if mounted, and removes dir.
 * Missing is fine. */
int frc_overlay_remove(const char *dir, frc_error_t *err);
/* Whether path is a mount point (per /proc/self/mountinfo). */
bool frc_is_mountpoint(const char *path);

#endif
