/* lockfile.h - an environment's manifest.lock (lockfile-version 1).
 *
 * Owns: parsing the lockfile FloxHub stores for a generation into what the
 * node needs for its Nix system, by Flox's own rules (docs/flox-compatibility.md
 * cites each): whether the environment supports the system (options.systems,
 * else the systems its catalog packages were locked for), the packages
 * (catalog, store-path and flake shapes) with the outputs Flox links and
 * realises and the priority builder.pl links each one at, the activation mode
 * the manifest asks for (options.activate.mode), and the manifest's vars and
 * on-activate hook.  Every store path is validated
 * (/nix/store/<32 nix32 chars>-<name>); every size and count is bounded while
 * parsing and the work is linear in the text.  The text is hostile input.
 */
#ifndef FRC_LOCKFILE_H
#define FRC_LOCKFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "annotations.h"
#include "error.h"

/* The largest of 44 real lockfiles (../shared/real-locks) is 215 KiB. */
#define FRC_LOCKFILE_MAX_BYTES (2u << 20)
#define FRC_LOCK_PACKAGES_MAX 10000 /* entries of "packages", all systems */
#define FRC_LOCK_OUTPUTS_MAX 64 /* outputs of one package */
#define FRC_LOCK_STORE_PATHS_MAX 4096 /* store paths selected for one system */
#define FRC_LOCK_SYSTEMS_MAX 16 /* options.systems, distinct package systems */
#define FRC_LOCK_VARS_MAX 1000
#define FRC_LOCK_BUILDS_MAX 64 /* manifest [build] entries */
#define FRC_LOCK_LIST_SHOWN 6 /* items of a list an error message shows */

/* builder.pl links an output outside outputs_to_install (version = 1
 * manifests) and a propagated package at FRC_LOCK_DEMOTE * p + n. */
#define FRC_LOCK_DEMOTE 1000L

struct frc_lock_output
{
  char *name; /* the output's name; NULL for a store-path package */
  char *path; /* /nix/store/... */
  /* The priority builder.pl links it at in a run environment: the package's
   * own, or 1000*p + n for an output outside outputs_to_install of a
   * version = 1 manifest (`other`; in dev, n counts on: frc_lock_priority). */
  long priority;
  bool other;
};

struct frc_lock_package
{
  char *install_id;
  char *label; /* pname-version or install_id, for messages */
  char **store_paths; /* the selected outputs' paths, NULL-terminated */
  struct frc_lock_output *outputs; /* the selected outputs, same order */
  size_t noutputs;
  long priority; /* the package's own: lower wins a file conflict; default 5 */
};

struct frc_lockfile
{
  int manifest_version; /* 1 for `version = 1`; 0 with `schema-version` */
  struct frc_lock_package *pkgs; /* those for the requested system, lockfile order */
  size_t npkgs;
  char **paths; /* every selected store path once, NULL-terminated: what to realise */
  size_t npaths;
  char **systems; /* options.systems, NULL-terminated; NULL when not given */
  bool has_mode; /* options.activate.mode given */
  enum frc_mode mode;
  /* builder.pl's one counter n: `other` outputs take [0, n_other) in run and
   * [n_other, 2 n_other) in dev; builds take the next n_build; propagated
   * packages continue from counter_base = 2 n_other + n_build. */
  size_t n_other, n_build;
  char **var_names; /* manifest vars, in order */
  char **var_values;
  size_t nvars;
  char *hook_on_activate; /* NULL when none */
};

/* The Nix system of this node: "x86_64-linux", "aarch64-linux", ... */
const char *frc_nix_system(void);

/* Parses text for system.  Fails (FRC_ECODE_NOT_FOUND) when Flox would
 * refuse to build the environment on system, naming the systems and the fix;
 * an environment that supports system but has no packages for it is empty. */
int frc_lockfile_parse(const char *text, size_t len, const char *system, struct frc_lockfile *out,
                       frc_error_t *err);
void frc_lockfile_release(struct frc_lockfile *l);
#define cleanup_lockfile __attribute__((cleanup(frc_lockfile_release)))

/* The priority o is linked at in an environment of mode m. */
long frc_lock_priority(const struct frc_lockfile *l, const struct frc_lock_output *o, enum frc_mode m);

/* What an environment of mode m links from the lockfile, in the order
 * builder.pl adds it (per package its outputs_to_install, then each other
 * output), each path once: the first entry wins (builder.pl:317-318,822-826).
 * The strings point into l. */
struct frc_lock_link
{
  const char *path;
  long priority;
  size_t pkg; /* index into l->pkgs */
  const struct frc_lock_output *output;
};
size_t frc_lock_links(const struct frc_lockfile *l, enum frc_mode m, struct frc_lock_link **out);

/* The mode of a container: the annotation's when given, else the manifest's
 * options.activate.mode, else run. */
enum frc_mode frc_lock_pick_mode(const struct frc_lockfile *l, bool annotated, enum frc_mode ann);

/* Nix's base-32 alphabet (store path hashes, printHash32). */
#define FRC_NIX32_CHARS "0123456789abcdfghijklmnpqrsvwxyz"

/* "/nix/store/" + 32 nix32 characters + "-" + a name of [A-Za-z0-9+-._?=],
 * not starting with '.', at most 211 characters, nothing after it. */
bool frc_store_path_valid(const char *path);

/* A set of strings for linear-time de-duplication (the strings are not
 * copied). */
struct frc_strset
{
  const char **slots;
  size_t cap, n;
};
/* true when s was added, false when it was there. */
bool frc_strset_add(struct frc_strset *set, const char *s);
bool frc_strset_has(const struct frc_strset *set, const char *s);
void frc_strset_release(struct frc_strset *set);

#endif
