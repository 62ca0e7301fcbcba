/* config.h - the node configuration.
 *
 * Owns: the node config file (JSON; FLOX_RUNC_CONFIG or
 * /etc/flox-runc/config.json), its defaults, and its validation.  A missing
 * file means all defaults; an unknown key, a wrong type or a bad value is an
 * error that names the key, the file and the accepted form.  Values derived
 * from others (floxhub_git_url) are filled in after loading, so every user
 * of the configuration sees the effective value.  What is printed never
 * holds a credential: URLs are shown with their userinfo masked.  docs/configuration.md
 * documents every key; keep the two in step.
 */
#ifndef FRC_CONFIG_H
#define FRC_CONFIG_H

#include <stdbool.h>

#include "error.h"

#define FRC_CONFIG_ENV "FLOX_RUNC_CONFIG"
#define FRC_CONFIG_MAX_BYTES (1u << 20)
#define FRC_DEFAULT_BASH "/bin/bash-static" /* Debian's bash-static */

enum frc_on_missing
{
  FRC_ON_MISSING_FAIL,
  FRC_ON_MISSING_PASSTHROUGH,
};

struct frc_config
{
  char *path; /* the file consulted */
  bool from_file; /* false: the file does not exist, all defaults */

  char *runtime; /* NULL: look runc up (runtime.h) */
  char *floxhub_url;
  char *floxhub_git_url;
  char *store_root;
  const char *store_prefix; /* derived: store_root, "" for "/": prefixes a /nix/... path to
                               name it on the node */
  char *state_dir;
  char **substituters; /* NULL-terminated */
  char **trusted_public_keys; /* NULL-terminated */
  enum frc_on_missing on_missing_environment;
  long deadline_seconds;
  char *ca_file; /* CA bundle for the hub, NULL: the system's */
  /* Proxies for FloxHub and nix-store's substituters alike; NULL: the
   * variables of the same names in flox-runc's environment, as libcurl reads
   * them (frc_config_proxy_env). */
  char *http_proxy, *https_proxy, *no_proxy;
  long fresh_seconds; /* reuse a live generation seen this recently */
  long auth_window_seconds; /* trust a credential FloxHub accepted this recently */
  char *bash; /* the bash of activations: a static bash on the node, added to the store once,
                or /nix/store/<pkg>/.../bash */
  char *bash_package; /* derived: the store path holding bash, NULL when it is a node file */
  char *container_ca_bundle; /* the node's CA bundle for containers, NULL: the usual places */
  long gc_max_age_seconds; /* `flox-runc gc` evicts environments unused this long */
  long fetch_uid, fetch_gid; /* the unprivileged ids FloxHub fetches run as (lib/sandbox.h) */
  long nix_mutable_max_bytes; /* size of a nix-mutable container's writable layer */
  long closure_hook_min_paths; /* closures this large are bound by the createContainer hook */
  bool share_tree_symlinks; /* environment trees hard-link the node's pool (lib/linkpool.h) */
  bool draft_tree; /* a cold build drafts the tree while Nix realises (lib/envbuild.h) */
  bool pin_views; /* the closure hook clones a view's binds pinned once per boot (lib/viewpin.h) */
  bool allow_criu_config_annotation; /* a Flox container keeps a spec's org.criu.config
                                        (lib/criu.h frc_criu_screen) */
};

/* The path of the node config file this process uses. */
const char *frc_config_path(void);

/* Loads path (NULL: frc_config_path()).  On error *c holds nothing. */
int frc_config_load(struct frc_config *c, const char *path, frc_error_t *err);
/* Loads from text, for tests; origin names it in messages.  A zeroed *c
 * starts from the defaults, as a missing file does. */
int frc_config_parse(struct frc_config *c, const char *text, size_t len, const char *origin,
                     frc_error_t *err);
void frc_config_release(struct frc_config *c);
#define cleanup_config __attribute__((cleanup(frc_config_release)))

/* "http_proxy=...", "https_proxy=...", "no_proxy=..." (and the upper-case
 * HTTPS_PROXY, NO_PROXY Nix's curl also reads) for the keys set, into env
 * (room for 6 and a NULL; the strings are malloc'd: frc_strv_free). */
void frc_config_proxy_env(const struct frc_config *c, char *env[7]);

/* The effective configuration as pretty JSON (for `flox-runc config`),
 * with the userinfo of every URL masked (frc_url_mask: never a proxy's or a
 * cache's credentials); it loads back as frc_config_redact(c) would be. */
char *frc_config_to_json(const struct frc_config *c);
/* Masks the userinfo of every URL key of c in place (what
 * frc_config_to_json shows). */
void frc_config_redact(struct frc_config *c);
/* The keys' values and the derived fields are the same (not path, from_file). */
bool frc_config_equal(const struct frc_config *a, const struct frc_config *b);

#endif
