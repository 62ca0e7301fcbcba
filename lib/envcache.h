/* envcache.h - the FLOX_ENV_CACHE directories on the node.
 *
 * Owns: the writable directory a container sees as FLOX_ENV_CACHE, one per
 * (pod, environment): <state_dir>/env-cache/sandbox/<sandbox id>/<owner>/<name>,
 * so that a restarted container of the pod finds what the last one left,
 * removed when the pod's sandbox is deleted (a `delete` of the sandbox id)
 * or by `flox-runc gc` once the runtime no longer knows the sandbox; a
 * container without a pod sandbox (ctr, podman) gets
 * <state_dir>/env-cache/container/<record key>/<owner>/<name>, removed with
 * the container.  The directory belongs to the container's user: root
 * changes it through descriptors only, never by path (frc_env_cache_write).
 */
#ifndef FRC_ENVCACHE_H
#define FRC_ENVCACHE_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "error.h"

struct frc_env_cache_request
{
  const struct frc_config *config;
  const char *sandbox_id; /* NULL: keyed by the container */
  const char *runtime_root; /* the runtime's --root ("" without), for gc */
  const char *container_key; /* frc_record_key */
  const char *owner, *name;
  uid_t uid; /* the container's user, as the node sees it */
  gid_t gid;
};

/* Creates (or finds) the directory; *dir is malloc'd. */
int frc_env_cache_prepare(const struct frc_env_cache_request *r, char **dir, frc_error_t *err);
/* Puts `name` (a plain file name) into the directory, owned uid:gid with
 * `mode`, without following anything a tenant planted there. */
int frc_env_cache_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
                        uid_t uid, gid_t gid, frc_error_t *err);
/* The sandbox's caches exist (delete of a passthrough id asks this). */
bool frc_env_cache_sandbox_exists(const struct frc_config *c, const char *sandbox_id);
int frc_env_cache_release_sandbox(const struct frc_config *c, const char *sandbox_id,
                                  frc_error_t *err);
int frc_env_cache_release_container(const struct frc_config *c, const char *container_key,
                                    frc_error_t *err);
/* The runtime root a sandbox's caches were made under (for gc), malloc'd or NULL. */
char *frc_env_cache_sandbox_root(const struct frc_config *c, const char *sandbox_id);

#endif
