/* linkpool.h - the node's pool of environment-tree symlinks.
 *
 * Owns: <store_root>/nix/var/flox-runc/links/, which holds one symlink inode
 * per distinct target, named by the SHA-256 of the target (64 hex digits),
 * and hard-linked into every environment tree holding a symlink with that
 * target (linkat of a symlink links the symlink itself).  A target then
 * costs one inode on the node however many trees use it: on ext4 a symlink
 * whose target is longer than 60 bytes has a 4 KiB block of its own, and a
 * tree is thousands of them.  A symlink's target never changes, so a shared
 * inode reads exactly as a private one.
 *
 * The pool is a cache that a tree never depends on: an entry is only ever a
 * hard link to a whole symlink (made in a tree, its times set, then linked
 * into the pool); a link taken from the pool is read back and kept only when
 * it holds the wanted target; any failure on the pool's side gives a
 * private symlink.  A create's build only looks entries up; its tree's new
 * symlinks are added afterwards, off its critical path, by the record's
 * confirmation process (frc_linkpool_add_tree, lib/environment.c).  `flox-runc gc` removes the entries no tree uses (link
 * count 1, frc_linkpool_sweep) without a lock: a build racing it either
 * linked the entry first (its tree keeps the inode) or finds none and makes
 * its own.  The pool sits beside the trees (same file system, mode 0700
 * parent) and is never bound into a container.
 */
#ifndef FRC_LINKPOOL_H
#define FRC_LINKPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "error.h"

#define FRC_LINKPOOL_DIR "/nix/var/flox-runc/links" /* logical, under the store root */

struct frc_linkpool
{
  int fd; /* the pool directory, -1: no pool (every symlink the tree's own) */
  bool empty; /* it had no entry when opened: nothing to look up (a cold node) */
};

/* Opens the pool directory dir (NULL: none); never fails: a pool that
 * cannot be opened is no pool. */
void frc_linkpool_open(struct frc_linkpool *p, const char *dir);
void frc_linkpool_close(struct frc_linkpool *p);

/* Makes dfd/name a symlink to target: a hard link of the pool's entry for
 * target when the pool has one, else a new symlink whose times are set to
 * times (frc_linkpool_add_tree adds it to the pool later).  0, with *shared
 * telling which; -1 with errno when the tree's entry cannot be made (the
 * pool's failures are never errors). */
int frc_linkpool_symlink(const struct frc_linkpool *p, const char *target, int dfd,
                         const char *name, const struct timespec times[2], bool *shared);

/* Adds every symlink of the tree at tree_dir (a built environment, its
 * directories walked at most FRC_LINKPOOL_MAX_DEPTH deep, symlinks never
 * followed) that the pool dir has no entry for: the only way entries are
 * made, off the build's critical path (the record's confirmation,
 * lib/environment.c).  Failures only leave symlinks
 * unshared; *added (optional) counts the entries made. */
#define FRC_LINKPOOL_MAX_DEPTH 128
void frc_linkpool_add_tree(const char *dir, const char *tree_dir, size_t *added);

/* gc: removes (counts only, when dry_run) every entry of the pool directory
 * dir that no tree uses (a link count of 1; anything but a directory).  A
 * missing pool is empty.  *freed counts them; -1 with *err naming the first
 * entry that could not be removed (the others are still tried). */
int frc_linkpool_sweep(const char *dir, bool dry_run, size_t *freed, frc_error_t *err);

#endif
