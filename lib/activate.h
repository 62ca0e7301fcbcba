/* activate.h - a process running inside a Flox environment.
 *
 * Owns: the activation of one OCI process object (the container's process
 * in config.json, or an exec --process file) as `flox activate -- CMD` of a
 * FloxHub environment does it (docs/flox-compatibility.md cites each rule):
 * the variables Flox's CLI and activate script set (FLOX_ENV,
 * FLOX_ENV_CACHE, FLOX_ENV_PROJECT, FLOX_ENV_DIRS, FLOX_ENV_DESCRIPTION,
 * _FLOX_ACTIVE_ENVIRONMENTS, FLOX_PROMPT_ENVIRONMENTS, SSL_CERT_FILE,
 * NIX_SSL_CERT_FILE, LOCALE_ARCHIVE, PATH, MANPATH, INFOPATH, XDG_DATA_DIRS)
 * and, in dev mode, what its profile.d scripts set (CPATH, LIBRARY_PATH,
 * PKG_CONFIG_PATH, ACLOCAL_PATH, RUST_SRC_PATH, JUPYTER_PATH, JAVA_HOME,
 * PYTHONPATH, PIP_CONFIG_FILE, CMAKE_PREFIX_PATH), computed here from what
 * the built tree holds (struct frc_env_features, probed once at build time);
 * FLOX_DISABLE_METRICS, FLOX_ACTIVATE_START_SERVICES; the command found in
 * the environment (argv[0] kept: PATH finds it); and the manifest's vars and
 * on-activate hook, which bash evaluates inside the container: the process
 * becomes [bash, -c, SCRIPT, flox-activate, CMD...] where SCRIPT runs, in a
 * subshell as Flox's activate script is a process of its own,
 * $FLOX_ENV/activate.d/envrc under `set -euo pipefail` then the hook
 * (stdout to stderr) without, applies the variables they exported or unset,
 * and execs CMD (a hook that exits or execs: exit 1); an exec attaches to
 * the first activation's record instead, as Flox's does.  In dev mode envrc
 * also sources the packages' plugin profile.d scripts (lib/envbuild.c).
 * Vars that need no evaluation (no $ ` \ "), no hook and no plugin
 * profile.d script: set directly, no bash.
 * Applying it twice gives the same process (an exec of an activated
 * container gets the same variables, and is wrapped once).
 */
#ifndef FRC_ACTIVATE_H
#define FRC_ACTIVATE_H

#include <stdbool.h>
#include <yajl/yajl_tree.h>

#include "annotations.h"
#include "error.h"

#define FRC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* argv[0] of the bash wrapper ($0 of its script): marks an activated process. */
#define FRC_HOOK_ARGV0 "flox-activate"
/* Where the container sees its FLOX_ENV_CACHE and, when neither the image's
 * environment nor the Flox environment has one, the node's CA bundle. */
#define FRC_ENV_CACHE_DIR "/run/flox/env-cache"
#define FRC_NODE_CA_BUNDLE "/run/flox/ca-bundle.crt"
/* The container's first activation's record, which an exec attaches to (in
 * the /run/flox tmpfs create mounts owned by the container's user). */
#define FRC_ACTIVATION_RECORD "/run/flox/activation"

/* What the activation needs to know of the built tree (probed on the node
 * once, when the environment is built; kept in its record). */
struct frc_env_features
{
  bool ca_bundle; /* etc/ssl/certs/ca-bundle.crt (nixpkgs' cacert) */
  bool locales; /* lib/locale/locale-archive (glibcLocales) */
  bool java; /* bin/java executable: JAVA_HOME */
  bool rust_src; /* rustc-std-workspace-std/ directory: RUST_SRC_PATH */
  bool jupyter; /* share/jupyter/ directory: JUPYTER_PATH */
  bool cmake; /* bin/cmake executable: CMAKE_PREFIX_PATH */
  bool pip; /* bin/pip3 executable: PIP_CONFIG_FILE */
  char python[16]; /* "3.12" when bin/python3 is executable: PYTHONPATH */
  bool profile_d_plugins; /* etc/profile.d/ has a *.sh not named as one of the
                             interpreter's own: dev mode sources it (envrc) */
};

/* The names of Flox's interpreter's own profile.d scripts
 * (assets/environment-interpreter/common/etc/profile.d/), as a bash case
 * pattern: a package's script of one of these names is not sourced
 * (activate.d/helpers.bash:80-105, source_plugin_profile_d); flox-runc
 * applies what the interpreter's own set itself (set_dev). */
#define FRC_INTERPRETER_PROFILE_D                                              \
  "0100_common-run-mode-paths.sh|0101_common-dev-mode-additional-paths.sh|"    \
  "0501_rust.sh|0502_jupyter.sh|0503_java.sh|0800_cuda.sh"


struct frc_activation
{
  const char *env_path; /* FLOX_ENV: the built environment's /nix/... path */
  const char *store_prefix; /* the node's store_root, "" for "/": maps /nix/... symlinks */
  const char *description; /* owner/name:N, for messages */
  const char *owner, *name; /* the FloxHub environment */
  unsigned generation; /* the pinned generation, 0 when the live one */
  const char *floxhub_url; /* the node's floxhub_url */
  enum frc_mode mode;
  char *const *var_names; /* the manifest's vars */
  char *const *var_values;
  size_t nvars;
  bool has_hook; /* $FLOX_ENV/activate.d/hook-on-activate exists */
  const char *bash; /* /nix/store/.../bin/bash; NULL when vars and hook need none */
  const struct frc_env_features *features;
  const char *env_cache; /* FLOX_ENV_CACHE inside the container; NULL: none */
  const char *ca_bundle; /* the node's bundle inside the container; NULL: none */
  bool disable_metrics;
  const char *rootfs; /* the container's rootfs on the node, for command lookup; may be NULL */
  bool record; /* /run/flox is create's tmpfs of the container's user: the first
                  activation records itself at FRC_ACTIVATION_RECORD */
  bool attach; /* an exec: attaches to that record when it may (else as the first) */
};

/* Whether the manifest's vars and hook need bash: a hook, or a value with
 * something bash would expand or unquote ($ ` \ "). */
bool frc_activation_needs_bash(char *const *values, size_t nvars, bool has_hook);

/* Whether the activation a runs through bash: its vars or hook need it, or
 * it is in dev mode and the environment has plugin profile.d scripts. */
bool frc_activation_wants_bash(const struct frc_activation *a);

/* Probes the built tree at env_path (logical, under the node's store
 * prefix "" or store_root). */
void frc_env_features_probe(const char *store_prefix, const char *env_path,
                            struct frc_env_features *f);
yajl_val frc_env_features_to_json(const struct frc_env_features *f);
void frc_env_features_from_json(yajl_val o, struct frc_env_features *f);

/* Flox's prepend_dirs_to_pathlike_var (cli/flox-activations/src/cli/
 * fix_paths.rs:78-124): each of dirs (':'-separated, most recent first)
 * joined with suffix (NULL: the dir itself), then the entries of old not
 * already present (empty entries kept).  malloc'd. */
char *frc_prepend_dedup(const char *dirs, const char *suffix, const char *old);

/* Rewrites process (a JSON process object) in place. */
int frc_activate_process(const struct frc_activation *a, yajl_val process, frc_error_t *err);

#endif
