#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/stat.h>

#include "dl.h"
#include "lockfile.h"
#include "mounts.h"
#include "store.h"
#include "util.h"
#include "viewpin.h"

char *
frc_view_dir(const struct frc_config *c, const char *env_key)
{
  return xasprintf("%s/views/%s", c->state_dir, env_key);
}

/* One closure path in the view under dfd (its store/): an empty directory
 * or file as the mount point of the bind, or the symlink itself.  Returns
 * 1 when the path needs a bind, 0 when not, -1 on error. */
static int
view_entry(const struct frc_config *c, int dfd, const char *store_path, frc_error_t *err)
{
  cleanup_free char *phys = frc_store_physical(c, store_path);
  const char *name = store_path + strlen("/nix/store/");
  struct stat st;

  if (lstat(phys, &st) < 0)
    return frc_error_errno(err, errno, "closure path `%s` is missing from the store", phys);
  if (S_ISDIR(st.st_mode))
    {
      if (mkdirat(dfd, name, 0555) < 0)
        return frc_error_errno(err, errno, "cannot create the view's `%s`", name);
      return 1;
    }
  if (S_ISLNK(st.st_mode))
    {
      char target[PATH_MAX];
      ssize_t n = readlink(phys, target, sizeof(target) - 1);
      if (n < 0)
        return frc_error_errno(err, errno, "cannot read the symlink `%s`", phys);
      target[n] = '\0';
      if (symlinkat(target, dfd, name) < 0)
        return frc_error_errno(err, errno, "cannot create the view's `%s`", name);
      return 0;
    }
  {
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0)
      return frc_error_errno(err, errno, "cannot create the view's `%s`", name);
    close(fd);
  }
  return 1;
}

/* Whether the view's entry for the closure path (lstat'd as st) is what
 * view_entry makes: a directory, a file, or the same symlink. */
static bool
view_entry_whole(int dfd, const char *store_path, const char *phys, const struct stat *st)
{
  const char *name = store_path + strlen("/nix/store/");
  struct stat v;
  if (fstatat(dfd, name, &v, AT_SYMLINK_NOFOLLOW) < 0)
    return false;
  if (S_ISLNK(st->st_mode))
    {
      char a[PATH_MAX], b[PATH_MAX];
      ssize_t na = readlink(phys, a, sizeof(a)), nb = readlinkat(dfd, name, b, sizeof(b));
      return S_ISLNK(v.st_mode) && na >= 0 && na == nb && memcmp(a, b, (size_t) na) == 0;
    }
  return S_ISDIR(st->st_mode) ? S_ISDIR(v.st_mode) : S_ISREG(v.st_mode);
}

int
frc_view_build(const struct frc_config *c, const char *env_key, char *const *closure, char ***binds,
               frc_error_t *err)
{
  cleanup_free char *parent = xasprintf("%s/views", c->state_dir);
  cleanup_free char *final = frc_view_dir(c, env_key);
  cleanup_free char *tmp = xasprintf("%s/.%s.%d", parent, env_key, (int) getpid());
  cleanup_free char *store = xasprintf("%s/store", tmp);
  cleanup_free char *envs = xasprintf("%s/var/flox-runc/envs/%s", tmp, env_key);
  cleanup_strv char **out = xmalloc0(sizeof(char *));
  cleanup_close int sfd = -1;
  frc_error_t ignored = NULL;
  size_t n = 0;

  if (frc_mkdir_p(parent, 0700, err) < 0)
    return -1;
  frc_dir_spread(parent);
  /* A key names one closure, so a view once in place never changes; and it
   * must not be replaced: removing a directory that is a mount point in a
   * running container's namespace detaches that container's mounts.  It is
   * not synced before it is renamed into place (docs/design.md,
   * "Durability"): one left by a crash of the node may miss entries, and
   * such a view, which no container can have bound whole, is built anew. */
  if (access(final, F_OK) == 0)
    {
      cleanup_free char *fstore = xasprintf("%s/store", final);
      cleanup_free char *fenv = xasprintf("%s/var/flox-runc/envs/%s", final, env_key);
      cleanup_close int vfd = open(fstore, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      struct stat est;
      bool whole = vfd >= 0 && stat(fenv, &est) == 0 && S_ISDIR(est.st_mode);
      for (char *const *p = closure; p && *p; p++)
        {
          cleanup_free char *phys = frc_store_physical(c, *p);
          struct stat st;
          if (!frc_store_path_valid(*p))
            return frc_error(err, "`%s` is not a store path", *p);
          if (lstat(phys, &st) < 0)
            return frc_error_errno(err, errno, "closure path `%s` is missing from the store", phys);
          whole = whole && view_entry_whole(vfd, *p, phys, &st);
          if (S_ISLNK(st.st_mode))
            continue;
          frc_strv_push(&out, &n, xstrdup(*p));
        }
      if (whole)
        {
          *binds = steal_pointer(&out);
          return 0;
        }
      frc_strv_freep(&out);
      out = xmalloc0(sizeof(char *));
      n = 0;
      /* its pin, if any, binds what is removed */
      if (frc_viewpin_remove(c, env_key, err) < 0 || frc_rm_rf(final, err) < 0)
        return frc_error_wrap(err, "cannot remove the environment's incomplete view");
    }
  frc_rm_rf(tmp, &ignored);
  frc_error_release(&ignored);
  if (frc_mkdir_p(store, 0555, err) < 0 || frc_mkdir_p(envs, 0555, err) < 0)
    goto fail;
  sfd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sfd < 0)
    {
      frc_error_errno(err, errno, "cannot open `%s`", store);
      goto fail;
    }
  for (char *const *p = closure; p && *p; p++)
    {
      int r;
      if (!frc_store_path_valid(*p))
        {
          frc_error(err, "`%s` is not a store path", *p);
          goto fail;
        }
      r = view_entry(c, sfd, *p, err);
      if (r < 0)
        goto fail;
      if (r == 1)
        {
          frc_strv_push(&out, &n, xstrdup(*p));
        }
    }
  if (rename(tmp, final) < 0)
    {
      frc_error_errno(err, errno, "cannot move the environment's view to `%s`", final);
      goto fail;
    }
  *binds = steal_pointer(&out);
  return 0;
fail:
  frc_rm_rf(tmp, &ignored);
  frc_error_release(&ignored);
  return frc_error_wrap(err, "cannot build the environment's view of /nix");
}

int
frc_view_remove(const struct frc_config *c, const char *env_key, frc_error_t *err)
{
  cleanup_free char *dir = frc_view_dir(c, env_key);
  cleanup_free char *db = xasprintf("%s.nixdb", dir);
  cleanup_free char *criu = xasprintf("%s.criu.conf", dir); /* lib/criu.h */
  return frc_viewpin_remove(c, env_key, err) < 0 || frc_rm_rf(dir, err) < 0 || frc_rm_rf(db, err) < 0
             || frc_rm_rf(criu, err) < 0
           ? -1
           : 0;
}

/* Copies the regular file from into to (created, mode 0644). */
static int
copy_file(const char *from, const char *to, frc_error_t *err)
{
  cleanup_close int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  cleanup_close int out = -1;
  char buf[65536];
  ssize_t n;

  if (in < 0)
    return frc_error_errno(err, errno, "cannot open `%s`", from);
  out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (out < 0)
    return frc_error_errno(err, errno, "cannot create `%s`", to);
  while ((n = read(in, buf, sizeof(buf))) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return frc_error_errno(err, errno, "cannot read `%s`", from);
      for (ssize_t off = 0; off < n;)
        {
          ssize_t w = write(out, buf + off, (size_t) (n - off));
          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0)
            return frc_error_errno(err, errno, "cannot write `%s`", to);
          off += w;
        }
    }
  return 0;
}

/* The Nix database of the closure in the writable layer: its files copied
 * into upper/var/nix/db (Nix makes its lock files itself). */
static int
seed_nix_db(const char *upper, const char *nix_db, frc_error_t *err)
{
  static const char *const files[] = { "db.sqlite", "schema", NULL };
  cleanup_free char *db = xasprintf("%s/var/nix/db", upper);

  if (frc_mkdir_p(db, 0755, err) < 0)
    return -1;
  for (const char *const *f = files; *f; f++)
    {
      cleanup_free char *from = xasprintf("%s/%s", nix_db, *f);
      cleanup_free char *to = xasprintf("%s/%s", db, *f);
      if (copy_file(from, to, err) < 0)
        return frc_error_wrap(err, "cannot give the writable /nix its Nix database");
    }
  return 0;
}

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

/* One mount through libmount; fstype NULL with a source binds. */
static int
mount_one(const struct frc_mount_api *m, const char *fstype, const char *source, const char *target,
          const char *opts, const char *what, frc_error_t *err)
{
  struct libmnt_context *cxt = m->mnt_new_context();
  int rc, e;

  if (cxt == NULL)
    return frc_error(err, "libmount: cannot allocate a context");
  m->mnt_context_disable_mtab(cxt, 1);
  m->mnt_context_set_fstype(cxt, fstype);
  m->mnt_context_set_source(cxt, source);
  m->mnt_context_set_target(cxt, target);
  m->mnt_context_set_options(cxt, opts);
  rc = m->mnt_context_mount(cxt);
  e = m->mnt_context_get_syscall_errno(cxt);
  m->mnt_free_context(cxt);
  if (rc != 0)
    return frc_error_errno(err, e ? e : EINVAL, "cannot mount %s at `%s`", what, target);
  return 0;
}

int
frc_overlay_create(const struct frc_config *c, const char *key, const char *lower, const char *nix_db,
                   char **dir_out, char **merged_out, frc_error_t *err)
{
  const struct frc_mount_api *m = frc_dl_mount(err);
  cleanup_free char *dir = xasprintf("%s/overlays/%s", c->state_dir, key);
  cleanup_free char *upper = xasprintf("%s/upper", dir);
  cleanup_free char *work = xasprintf("%s/work", dir);
  cleanup_free char *merged = xasprintf("%s/merged", dir);
  cleanup_free char *opts = NULL;
  cleanup_free char *tmpfs_opts = NULL;
  frc_error_t ignored = NULL;

  if (m == NULL)
    return -1;
  if (!frc_have_capability(CAP_SYS_ADMIN))
    return frc_error(err, "flox.dev/nix-mutable needs flox-runc to run with CAP_SYS_ADMIN to mount "
                          "the writable /nix overlay: run the engine as root, or drop the "
                          "annotation");
  if (strpbrk(lower, ",:") || strpbrk(dir, ",:"))
    return frc_error(err, "state_dir must not contain ',' or ':' for a writable /nix");
  /* A leftover of an earlier create of the same container id. */
  if (frc_overlay_remove(dir, err) < 0)
    return -1;
  if (frc_mkdir_p(dir, 0700, err) < 0)
    return frc_error_wrap(err, "cannot prepare the writable /nix");
  /* The writable layer is a tmpfs of its own: bounded by the node's
   * setting, nosuid and nodev, gone with its unmount. */
  tmpfs_opts = xasprintf("nosuid,nodev,mode=0700,size=%ld", c->nix_mutable_max_bytes);
  if (mount_one(m, "tmpfs", "flox-nix-upper", dir, tmpfs_opts, "the writable /nix layer", err) < 0)
    goto fail;
  if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0 || mkdir(merged, 0755) < 0)
    {
      frc_error_errno(err, errno, "cannot prepare the writable /nix in `%s`", dir);
      goto fail;
    }
  if (nix_db && seed_nix_db(upper, nix_db, err) < 0)
    goto fail;
  opts = xasprintf("nosuid,nodev,lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
  if (mount_one(m, "overlay", "flox-nix", merged, opts, "the writable /nix overlay (flox.dev/nix-mutable)",
                err)
      < 0)
    goto fail;
  /* The view's directories are 0555: give the writable /nix the modes of
   * the node's (copied up into the private layer, the view is untouched). */
  {
    static const char *const dirs[] = { "", "/store", "/var", NULL };
    for (const char *const *d = dirs; *d; d++)
      {
        cleanup_free char *node = xasprintf("%s/nix%s", c->store_prefix, *d);
        cleanup_free char *mine = xasprintf("%s%s", merged, *d);
        struct stat st;
        mode_t mode = strcmp(*d, "/store") == 0 ? 01775 : 0755;
        if (stat(node, &st) == 0)
          mode = st.st_mode & 07777;
        if (chmod(mine, mode) < 0)
          {
            frc_error_errno(err, errno, "cannot prepare the writable /nix `%s`", mine);
            goto fail;
          }
      }
  }
  *dir_out = steal_pointer(&dir);
  *merged_out = steal_pointer(&merged);
  return 0;
fail:
  frc_overlay_remove(dir, &ignored);
  frc_error_release(&ignored);
  return -1;
}

static int
unmount_all(const char *target, const char *what, frc_error_t *err)
{
  while (frc_is_mountpoint(target))
    {
      const struct frc_mount_api *m = frc_dl_mount(err);
      struct libmnt_context *cxt;
      int rc;
      if (m == NULL)
        return -1;
      cxt = m->mnt_new_context();
      if (cxt == NULL)
        return frc_error(err, "libmount: cannot allocate a context");
      m->mnt_context_disable_mtab(cxt, 1);
      m->mnt_context_set_target(cxt, target);
      m->mnt_context_enable_lazy(cxt, 1);
      rc = m->mnt_context_umount(cxt);
      m->mnt_free_context(cxt);
      if (rc != 0)
        return frc_error(err, "cannot unmount %s `%s`", what, target);
    }
  return 0;
}

int
frc_overlay_remove(const char *dir, frc_error_t *err)
{
  cleanup_free char *merged = xasprintf("%s/merged", dir);
  struct stat st;

  if (lstat(dir, &st) < 0)
    return 0;
  if (unmount_all(merged, "the writable /nix overlay", err) < 0
      || unmount_all(dir, "the writable /nix layer", err) < 0)
    return -1;
  return frc_rm_rf(dir, err);
}
