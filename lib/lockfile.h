/* lockfile.h - an environment's manifest.lock (lockfile-version 1).
 *
 * Owns: parsing the lockfile FloxHub stores for a generation into what the
 * node needs for its Nix system: the packages (catalog, store-path and flake
 * shapes) with the store paths of the outputs to realise and link (all but
 * `stubs` for manifest version 1), their priorities, and the manifest's vars
 * and on-activate hook.  Every store path is validated
 * (/nix/store/<32 nix32 chars>-<name>); every size is bounded.  The text is
 * hostile input.
 */
#ifndef FRC_LOCKFILE_H
#define FRC_LOCKFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define FRC_LOCKFILE_MAX_BYTES (16u << 20)
#define FRC_LOCK_PACKAGES_MAX 10000
#define FRC_LOCK_OUTPUTS_MAX 64
#define FRC_LOCK_VARS_MAX 1000

struct frc_lock_package
{
  char *install_id;
  char *label; /* pname-version or install_id, for messages */
  char **store_paths; /* outputs to realise and link, NULL-terminated */
  long priority; /* lower wins a file conflict; default 5 */
};

struct frc_lockfile
{
  int manifest_version;
  struct frc_lock_package *pkgs; /* those for the requested system */
  size_t npkgs;
  char **systems; /* every system the lockfile has packages for, NULL-terminated */
  char **var_names; /* manifest vars, in order */
  char **var_values;
  size_t nvars;
  char *hook_on_activate; /* NULL when none */
};

/* The Nix system of this node: "x86_64-linux", "aarch64-linux", ... */
const char *frc_nix_system(void);

/* Parses text for system.  An environment with packages only for other
 * systems fails naming the systems it has. */
int frc_lockfile_parse(const char *text, size_t len, const char *system, struct frc_lockfile *out,
                       frc_error_t *err);
void frc_lockfile_release(struct frc_lockfile *l);
#define cleanup_lockfile __attribute__((cleanup(frc_lockfile_release)))

/* "/nix/store/" + 32 nix32 characters + "-" + a name of [A-Za-z0-9+-._?=],
 * not starting with '.', at most 211 characters, nothing after it. */
bool frc_store_path_valid(const char *path);

#endif
