/* activate.h - a process running inside a Flox environment.
 *
 * Owns: the activation of one OCI process object (the container's process
 * in config.json, or an exec --process file): the environment of the mode
 * (FLOX.md: FLOX_ENV, PATH with the environment's bin and sbin first and
 * the image's PATH after them, MANPATH; run adds INFOPATH and XDG_DATA_DIRS,
 * dev adds CPATH, LIBRARY_PATH, PKG_CONFIG_PATH, ACLOCAL_PATH), the
 * manifest's vars ($VAR references expanded), FLOX_DISABLE_METRICS; the command found in the
 * environment; and the on-activate hook run first by a shell (its stdout
 * goes to stderr).  Applying it twice gives the same process.
 */
#ifndef FRC_ACTIVATE_H
#define FRC_ACTIVATE_H

#include <stdbool.h>
#include <yajl/yajl_tree.h>

#include "annotations.h"
#include "error.h"

#define FRC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* argv[0] of the hook wrapper: marks a process already activated. */
#define FRC_HOOK_ARGV0 "flox-activate"

struct frc_activation
{
  const char *env_path; /* FLOX_ENV: the built environment's /nix/store path */
  const char *store_prefix; /* the node's store_root, "" for "/": maps /nix/... symlinks */
  const char *description; /* owner/name */
  enum frc_mode mode;
  char *const *var_names; /* the manifest's vars */
  char *const *var_values;
  size_t nvars;
  bool has_hook; /* $FLOX_ENV/activate.d/hook-on-activate exists */
  const char *shell; /* /nix/store/... shell for the hook; NULL when no hook */
  bool disable_metrics;
  const char *rootfs; /* the container's rootfs on the node, for command lookup; may be NULL */
};

/* A manifest var's value with $NAME and ${NAME} replaced from the process's
 * environment as built so far (FLOX_ENV, PATH, earlier vars), as the
 * double-quoted `export` of Flox's activation does; \$ is a literal dollar;
 * nothing else is interpreted (no command substitution).  malloc'd; NULL
 * when the result would be longer than FRC_VAR_EXPANDED_MAX (a var built by
 * repeating earlier ones doubles with each, and execve refuses longer
 * environment strings anyway). */
#define FRC_VAR_EXPANDED_MAX (128u << 10)
char *frc_expand_vars(yajl_val process, const char *value);

/* Rewrites process (a JSON process object) in place. */
int frc_activate_process(const struct frc_activation *a, yajl_val process, frc_error_t *err);

#endif
