/* envbuild.h - the merged tree of a built Flox environment.
 *
 * Owns: building, in a directory the caller gives, what the Flox CLI builds
 * for a generation: a buildEnv-style tree of real directories and symlinks
 * to the logical store paths (/nix/store/..., never the node's physical
 * <store_root> prefix) of every package output, packages merged by priority,
 * plus the activation files (activate.d/envrc, activate.d/hook-on-activate,
 * activate.d/vars.json, manifest.lock), its symlinks shared with other trees
 * through the node's pool (lib/linkpool.h).  Store contents are hostile input:
 * symlinks are resolved only inside <store_root>/nix/store and the walk is
 * bounded.  Realising the store paths, choosing what to link (lib/lockfile.h,
 * lib/propagate.h: a dev environment is its run packages plus their
 * propagated build inputs, given as packages), command
 * lookup and moving the tree into place are the caller's.
 */
#ifndef FRC_ENVBUILD_H
#define FRC_ENVBUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Default bounds of the walk (struct frc_envbuild_limits). */
#define FRC_ENVBUILD_MAX_DEPTH 128 /* components of a path in the tree */
#define FRC_ENVBUILD_MAX_ENTRIES 2000000 /* directory entries examined in all */
#define FRC_ENVBUILD_MAX_DIR_ENTRIES 200000 /* entries of one directory */
#define FRC_ENVBUILD_MAX_LINK_HOPS 40 /* symlinks followed to resolve one path */

enum frc_envbuild_mode
{
  FRC_ENVBUILD_RUN, /* the packages' outputs */
  FRC_ENVBUILD_DEV, /* the same merge; the caller's package list differs */
};

struct frc_envbuild_pkg
{
  const char *label; /* for messages: pname-version or install_id */
  long priority; /* the lower number wins a file conflict */
  char *const *store_paths; /* logical /nix/store/... outputs to link, NULL-terminated */
  /* Linked because another package propagates it (lib/propagate.h): at its
   * priority a clash is no error, the entry already there stays
   * (builder.pl addPkg with ignoreCollisions = 2); a path that is a file or
   * leads out of the store is skipped. */
  bool propagated;
};

/* A zero field takes the default above. */
struct frc_envbuild_limits
{
  size_t max_depth;
  size_t max_entries;
  size_t max_dir_entries;
};

struct frc_envbuild_input
{
  const char *store_root; /* the store is <store_root>/nix/store; NULL means "/" */
  enum frc_envbuild_mode mode;
  const struct frc_envbuild_pkg *pkgs; /* in lockfile order */
  size_t npkgs;
  char *const *var_names; /* manifest vars, in order; names are shell identifiers */
  char *const *var_values;
  size_t nvars;
  const char *hook; /* on-activate hook text, NULL when none */
  const char *lockfile; /* copied byte for byte to manifest.lock */
  size_t lockfile_len;
  const struct frc_envbuild_limits *limits; /* NULL: the defaults */
  /* false (the default): a directory that mirrors one store directory
   * unchanged (one source, nothing skipped or shadowed in it) is written as
   * one symlink to it, as Nix's buildEnv does; true: always real
   * directories (tests of the merge, debugging). */
  bool expand_all;
  /* The node's pool of symlinks (lib/linkpool.h), an existing directory on
   * the file system of out_dir; NULL (or not openable): every symlink is
   * the tree's own. */
  const char *link_pool;
  /* out_dir holds this draft (frc_envbuild_draft into the same out_dir):
   * what it wrote exactly as the tree has it stays, the rest is removed;
   * NULL: out_dir is empty. */
  struct frc_envbuild_draft *draft;
};

struct frc_envbuild_stats
{
  size_t dirs; /* directories created, out_dir itself not counted */
  size_t links; /* symlinks created */
  size_t shared; /* of those, hard links of the pool's symlinks */
  size_t files; /* activation files written */
  size_t shadowed; /* entries not linked: a higher-precedence or identical one won */
  size_t skipped; /* entries buildEnv ignores, and propagated paths that are not directories */
  size_t entries; /* directory entries examined (the bound) */
};

/* Builds the environment in out_dir, an existing empty directory.
 *
 * Tree: a real directory for every directory of any output, a symlink to the
 * logical path of the output's entry for everything else.  A symlink in an
 * output that resolves (inside the store only, at most
 * FRC_ENVBUILD_MAX_LINK_HOPS links) to a directory is merged through as a
 * directory, its entries linked at their resolved paths, unless it leads back
 * to a directory being walked (a loop).  Any other symlink, leaving the store,
 * dangling or looping, is linked as it is (to the output's entry) and never
 * followed.  Left out, as buildEnv does: the top-level nix-support and
 * propagated-build-inputs, every perllocal.pod and every info/dir.  An
 * output that is not a directory (or leads out of the store) is an error.
 *
 * Precedence: the activation files (their names are reserved even when
 * absent, e.g. hook-on-activate without a hook), then packages by priority
 * number, lower first.  At one path, two
 * directories merge; otherwise the higher precedence wins, and two packages
 * at the same priority are a conflict (error naming both labels and the
 * path) unless both entries resolve to the same file, or lead to the same
 * path outside the store, or the later one is propagated (it is skipped).
 *
 * Files: manifest.lock (the lockfile, byte for byte), activate.d/envrc
 * (`export NAME="value"` lines, the value verbatim for bash to expand at
 * activation, in Flox's render order: frc_vars_render_order),
 * activate.d/vars.json ({"NAME":"value",...} in manifest order) and
 * activate.d/hook-on-activate (when there is a hook: the text outdented by
 * frc_outdent_text).
 *
 * With in->link_pool, a symlink is a hard link of the pool's symlink with the
 * same target when the pool has one, else a new one, which the caller adds
 * to the pool afterwards (frc_linkpool_add_tree): the same tree, one inode
 * per target on the node (lib/linkpool.h).
 *
 * On success every directory (out_dir included) is 0555, every file 0444 and
 * every timestamp 1 (as in the Nix store); entries are created in sorted
 * order; nothing is synced to disk.  On failure out_dir holds a partial tree
 * for the caller to remove.  A bound exceeded sets FRC_ECODE_TOO_BIG.  stats
 * may be NULL. */
int frc_envbuild(const struct frc_envbuild_input *in, const char *out_dir,
                 struct frc_envbuild_stats *stats, frc_error_t *err);

/* A draft of the tree, written while Nix still realises some packages
 * (lib/environment.c): the tree of the packages in (those realised so
 * far, and the activation files; its top-level directories always real
 * ones, betting that a package still to come shares them, none sealed) into
 * the empty out_dir, and *draft what it wrote.  frc_envbuild with
 * in->draft then makes out_dir exactly the tree it would have built into
 * an empty directory, keeping what the draft got right (busybox's ~270
 * applets in bin/ while Nix fetches hello).  A failed draft leaves out_dir
 * to be emptied. */
struct frc_envbuild_draft;
int frc_envbuild_draft(const struct frc_envbuild_input *in, const char *out_dir,
                       struct frc_envbuild_draft **draft, frc_error_t *err);
void frc_envbuild_draft_free(struct frc_envbuild_draft *d);

/* The order Flox writes [vars] to envrc (cli/flox-rust-sdk/src/providers/
 * vars_order.rs render_order): by name, except that a var comes after the
 * vars its value references ($NAME, ${NAME...}); order[k] is the index of
 * the k-th.  A reference cycle is an error naming a var of it; more than
 * FRC_LOCK_VARS_MAX vars (the lockfile's own bound) is an error.  Linear
 * in the values' length. */
int frc_vars_render_order(char *const *names, char *const *values, size_t n, size_t *order,
                          frc_error_t *err);
/* buildenv/buildenvLib/default.nix outdentText: the least indentation (in
 * spaces) of the non-empty lines removed from every line.  malloc'd. */
char *frc_outdent_text(const char *text);

#endif
