/* record.h - what create leaves for exec and delete.
 *
 * Owns: the per-container record, one JSON file at
 * <state_dir>/containers/<fnv64(runtime root)>/<container id>.json,
 * keyed by the runtime's --root and the container id (containerd passes no
 * bundle to exec, conmon no --log: neither can locate it) and written
 * atomically at the end of a successful create; and finding it again,
 * including for a call that lacks --root (podman's cleanup `delete --force`),
 * where a record is used only when exactly one has that id.
 */
#ifndef FRC_RECORD_H
#define FRC_RECORD_H

#include <stdbool.h>

#include "activate.h"
#include "config.h"

struct frc_record
{
  char *id;
  char *runtime_root; /* "" when the call had no --root */
  char *bundle;
  char *reference; /* owner/name:N as resolved */
  char *env_key; /* the environment's cache key */
  char *env_path; /* FLOX_ENV */
  enum frc_mode mode;
  bool skip_exec; /* flox.dev/skip-containers-exec names this container */
  bool disable_metrics;
  bool has_hook;
  char *bash; /* NULL when vars and hook need none */
  char *owner, *name; /* the FloxHub environment */
  unsigned generation; /* pinned by the annotation, 0: live */
  struct frc_env_features features;
  char *env_cache; /* FLOX_ENV_CACHE inside the container, NULL: none */
  char *env_cache_dir; /* its directory on the node */
  bool env_cache_per_container; /* no sandbox id: removed with the container */
  char *ca_bundle; /* the node's CA bundle inside the container, NULL: not mounted */
  bool activation_record; /* create's /run/flox tmpfs: execs attach (lib/activate.h) */
  char **var_names;
  char **var_values;
  size_t nvars;
  char *overlay; /* the private /nix overlay directory, NULL when read-only */
  char *gcroot; /* name of the container's GC root (a link to its environment's) */
};

/* A container id flox-runc accepts for a Flox container (runc's own rule:
 * letters, digits, '_', '+', '-', '.', not "." or ".."). */
bool frc_container_id_valid(const char *id);
#define FRC_CONTAINER_ID_MAX 200
/* "<fnv64(root)>-<id>": names the container's GC root and overlay (the id
 * must be valid; at most 200 characters). */
int frc_record_key(const char *root, const char *id, char **out, frc_error_t *err);

int frc_record_save(const struct frc_config *c, const struct frc_record *r, frc_error_t *err);
/* *found false (and 0 returned) when there is no record. */
int frc_record_load(const struct frc_config *c, const char *root, const char *id,
                    struct frc_record *r, bool *found, frc_error_t *err);
/* Reads one record file (gc walks them). */
int frc_record_read(const char *path, struct frc_record *r, frc_error_t *err);
int frc_record_remove(const struct frc_config *c, const struct frc_record *r, frc_error_t *err);
void frc_record_release(struct frc_record *r);
#define cleanup_record __attribute__((cleanup(frc_record_release)))

/* The activation a record describes; store_prefix and rootfs are left NULL
 * for the caller. */
void frc_record_activation(const struct frc_record *r, struct frc_activation *a);

#endif
