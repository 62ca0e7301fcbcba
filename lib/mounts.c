#include <errno.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/stat.h>

#include "dl.h"
#include "mounts.h"
#include "util.h"

bool
frc_is_mountpoint(const char *path)
{
  frc_error_t ignored = NULL;
  const struct frc_mount_api *m = frc_dl_mount(&ignored);
  struct libmnt_table *t;
  bool found;

  if (m == NULL)
    {
      frc_error_release(&ignored);
      return false;
    }
  t = m->mnt_new_table_from_file("/proc/self/mountinfo");
  if (t == NULL)
    return false;
  found = m->mnt_table_find_target(t, path, MNT_ITER_BACKWARD) != NULL;
  m->mnt_unref_table(t);
  return found;
}

int
frc_overlay_create(const struct frc_config *c, const char *key, char **dir_out, char **merged_out,
                   frc_error_t *err)
{
  const struct frc_mount_api *m = frc_dl_mount(err);
  cleanup_free char *dir = xasprintf("%s/overlays/%s", c->state_dir, key);
  cleanup_free char *upper = xasprintf("%s/upper", dir);
  cleanup_free char *work = xasprintf("%s/work", dir);
  cleanup_free char *merged = xasprintf("%s/merged", dir);
  cleanup_free char *lower = xasprintf("%s/nix", strcmp(c->store_root, "/") == 0 ? "" : c->store_root);
  cleanup_free char *opts = NULL;
  struct libmnt_context *cxt;
  int rc;

  if (m == NULL)
    return -1;
  if (!frc_have_capability(CAP_SYS_ADMIN))
    return frc_error(err, "flox.dev/nix-mutable needs flox-runc to run with CAP_SYS_ADMIN to mount "
                          "the writable /nix overlay: run the engine as root, or drop the "
                          "annotation");
  /* A leftover of an earlier create of the same container id. */
  if (frc_overlay_remove(dir, err) < 0)
    return -1;
  if (frc_mkdir_p(upper, 0755, err) < 0 || frc_mkdir_p(work, 0700, err) < 0
      || frc_mkdir_p(merged, 0755, err) < 0)
    return frc_error_wrap(err, "cannot prepare the writable /nix");
  if (strpbrk(lower, ",:") || strpbrk(upper, ",:") || strpbrk(work, ",:"))
    return frc_error(err, "store_root and state_dir must not contain ',' or ':' for a writable /nix");
  opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
  cxt = m->mnt_new_context();
  if (cxt == NULL)
    return frc_error(err, "libmount: cannot allocate a context");
  m->mnt_context_disable_mtab(cxt, 1);
  m->mnt_context_set_fstype(cxt, "overlay");
  m->mnt_context_set_source(cxt, "flox-nix");
  m->mnt_context_set_target(cxt, merged);
  m->mnt_context_set_options(cxt, opts);
  rc = m->mnt_context_mount(cxt);
  if (rc != 0)
    {
      int e = m->mnt_context_get_syscall_errno(cxt);
      m->mnt_free_context(cxt);
      frc_rm_rf(dir, err);
      return frc_error_errno(err, e ? e : EINVAL,
                             "cannot mount the writable /nix overlay (flox.dev/nix-mutable) at `%s`",
                             merged);
    }
  m->mnt_free_context(cxt);
  *dir_out = steal_pointer(&dir);
  *merged_out = steal_pointer(&merged);
  return 0;
}

int
frc_overlay_remove(const char *dir, frc_error_t *err)
{
  cleanup_free char *merged = xasprintf("%s/merged", dir);
  struct stat st;

  if (lstat(dir, &st) < 0)
    return 0;
  while (frc_is_mountpoint(merged))
    {
      const struct frc_mount_api *m = frc_dl_mount(err);
      struct libmnt_context *cxt;
      int rc;
      if (m == NULL)
        return -1;
      cxt = m->mnt_new_context();
      m->mnt_context_disable_mtab(cxt, 1);
      m->mnt_context_set_target(cxt, merged);
      m->mnt_context_enable_lazy(cxt, 1);
      rc = m->mnt_context_umount(cxt);
      m->mnt_free_context(cxt);
      if (rc != 0)
        return frc_error(err, "cannot unmount the writable /nix overlay `%s`", merged);
    }
  return frc_rm_rf(dir, err);
}
