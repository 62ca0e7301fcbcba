#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envcache.h"
#include "record.h"
#include "util.h"

/* Beside the sandbox's owner directories: a dot name, which no owner can
 * have (an owner named runtime-root clashed with it); LEGACY_ROOT_FILE is
 * what releases before it wrote, still read for a sandbox they made. */
#define ROOT_FILE ".runtime-root"
#define LEGACY_ROOT_FILE "runtime-root"

static char *
sandbox_dir(const struct frc_config *c, const char *id)
{
  return xasprintf("%s/env-cache/sandbox/%s", c->state_dir, id);
}

static char *
container_dir(const struct frc_config *c, const char *key)
{
  return xasprintf("%s/env-cache/container/%s", c->state_dir, key);
}

int
frc_env_cache_prepare(const struct frc_env_cache_request *r, char **dir, frc_error_t *err)
{
  const struct frc_config *c = r->config;
  cleanup_free char *top = NULL;
  cleanup_free char *owner_dir = NULL;
  cleanup_free char *d = NULL;
  cleanup_close int dfd = -1;
  struct stat st;

  if (r->sandbox_id && !frc_container_id_valid(r->sandbox_id))
    return frc_error(err, "the pod sandbox id \"%.64s\" is not a valid id", r->sandbox_id);
  top = r->sandbox_id ? sandbox_dir(c, r->sandbox_id) : container_dir(c, r->container_key);
  owner_dir = xasprintf("%s/%s", top, r->owner);
  d = xasprintf("%s/%s", owner_dir, r->name);
  if (frc_mkdir_p(owner_dir, 0700, err) < 0)
    return frc_error_wrap(err, "cannot create the FLOX_ENV_CACHE directory");
  if (r->sandbox_id)
    {
      cleanup_free char *rf = xasprintf("%s/" ROOT_FILE, top);
      const char *root = r->runtime_root ? r->runtime_root : "";
      /* Not synced: after a crash every sandbox is gone, and gc removes a
       * directory whose file is missing or damaged as it would with it
       * (the runtime has no such sandbox). */
      if (access(rf, F_OK) < 0 && write_file_replace(rf, root, strlen(root), 0600, err) < 0)
        return frc_error_wrap(err, "cannot create the FLOX_ENV_CACHE directory");
    }
  if (mkdir(d, 0755) < 0 && errno != EEXIST)
    return frc_error_errno(err, errno, "cannot create the FLOX_ENV_CACHE directory `%s`", d);
  /* Everything above d is root's (0700); d itself is never followed and
   * is changed through its descriptor only. */
  dfd = open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0 || fstat(dfd, &st) < 0)
    return frc_error(err, "the FLOX_ENV_CACHE directory `%s` is not a directory: remove it", d);
  /* the first container of the pod decides its owner; later ones (a
   * restart) find it as it was left */
  if (st.st_uid == 0 && st.st_gid == 0 && (r->uid != 0 || r->gid != 0)
      && fchown(dfd, r->uid, r->gid) < 0)
    return frc_error_errno(err, errno, "cannot give the FLOX_ENV_CACHE directory `%s` to %u:%u", d,
                           (unsigned) r->uid, (unsigned) r->gid);
  *dir = steal_pointer(&d);
  return 0;
}

/* The directory is the tenant's, writable from inside the container
 * while we run as root: nothing in it is looked up by path. The temporary
 * file is created O_EXCL|O_NOFOLLOW under a fresh name, owned and moded
 * through its descriptor, then renamed over `name` (a link planted there is
 * replaced, never followed). */
int
frc_env_cache_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
                    uid_t uid, gid_t gid, frc_error_t *err)
{
  cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int fd = -1;
  char tmp[64];

  if (dfd < 0)
    return frc_error_errno(err, errno, "cannot open the FLOX_ENV_CACHE directory `%s`", dir);
  for (int tries = 0; fd < 0; tries++)
    {
      unsigned long long rnd = 0;
      if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
        rnd = ((unsigned long long) getpid() << 20) | (unsigned) tries;
      snprintf(tmp, sizeof(tmp), ".flox-runc.%016llx", rnd);
      fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
      if (fd < 0 && (errno != EEXIST || tries >= 100))
        return frc_error_errno(err, errno, "cannot create a file in the FLOX_ENV_CACHE directory `%s`",
                               dir);
    }
  if (write_all(fd, data, len) < 0 || fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0
      || renameat(dfd, tmp, dfd, name) < 0)
    {
      int e = errno;
      unlinkat(dfd, tmp, 0);
      return frc_error_errno(err, e, "cannot write `%s/%s`", dir, name);
    }
  return 0;
}

bool
frc_env_cache_sandbox_exists(const struct frc_config *c, const char *sandbox_id)
{
  cleanup_free char *d = NULL;
  if (!frc_container_id_valid(sandbox_id))
    return false;
  d = sandbox_dir(c, sandbox_id);
  return access(d, F_OK) == 0;
}

char *
frc_env_cache_sandbox_root(const struct frc_config *c, const char *sandbox_id)
{
  cleanup_free char *d = sandbox_dir(c, sandbox_id);
  static const char *const names[] = { ROOT_FILE, LEGACY_ROOT_FILE };
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    {
      cleanup_free char *rf = xasprintf("%s/%s", d, names[i]);
      char *text = NULL;
      size_t len = 0;
      frc_error_t ignored = NULL;
      if (read_file_bounded(rf, 4096, &text, &len, &ignored) == 0)
        return text;
      frc_error_release(&ignored);
    }
  return NULL;
}

int
frc_env_cache_release_sandbox(const struct frc_config *c, const char *sandbox_id, frc_error_t *err)
{
  cleanup_free char *d = NULL;
  if (!frc_container_id_valid(sandbox_id))
    return 0;
  d = sandbox_dir(c, sandbox_id);
  return frc_rm_rf(d, err);
}

int
frc_env_cache_release_container(const struct frc_config *c, const char *container_key,
                                frc_error_t *err)
{
  cleanup_free char *d = container_dir(c, container_key);
  return frc_rm_rf(d, err);
}
