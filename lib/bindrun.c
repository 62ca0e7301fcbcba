/* bindrun.c - see bindrun.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "bindrun.h"
#include "environment.h"
#include "json.h"
#include "lockfile.h"
#include "syscalls.h"
#include "util.h"
#include "viewpin.h"

#define STORE_DIR "/nix/store/"
/* open_tree_attr (Linux 6.15; the same number on every architecture, as
 * every syscall since 424); glibc 2.36 does not name it */
#ifndef SYS_open_tree_attr
#define SYS_OPEN_TREE_ATTR 467
#else
#define SYS_OPEN_TREE_ATTR SYS_open_tree_attr
#endif

#define STATE_MAX (64u << 10)

/* The state the runtime writes to the hook's stdin ("bundle" resolves a
 * relative ROOT), read to the end in any case: crun fails the create
 * ("writing to pipe: Broken pipe") when the hook has exited before it
 * wrote.  A pipe only: never wait on a terminal.  Returns the bundle
 * (malloc'd) or NULL. */
char *
frc_bindhook_state_bundle(void)
{
  struct stat st;
  char *buf = NULL, *bundle = NULL;
  size_t len = 0;
  yajl_val state = NULL;
  frc_error_t ignored = NULL;

  if (fstat(0, &st) < 0 || !S_ISFIFO(st.st_mode))
    return NULL;
  buf = xmalloc0(STATE_MAX + 1);
  for (;;)
    {
      char sink[4096];
      char *at = len < STATE_MAX ? buf + len : sink;
      size_t room = len < STATE_MAX ? STATE_MAX - len : sizeof(sink);
      ssize_t n = read(0, at, room);
      if (n == 0 || (n < 0 && errno != EINTR))
        break;
      if (n > 0 && at == buf + len)
        len += (size_t) n;
    }
  buf[len] = '\0';
  if (len > 0 && frc_json_parse(buf, len, &state, &ignored) == 0)
    {
      const char *b = frc_json_get_string(state, "bundle");
      bundle = b ? xstrdup(b) : NULL;
    }
  frc_error_release(&ignored);
  frc_json_freep(&state);
  free(buf);
  return bundle;
}

int
frc_view_each_bind(const char *store_dir, int (*fn)(const char *name, void *data, frc_error_t *err),
                   void *data, frc_error_t *err)
{
  cleanup_dir DIR *d = NULL;
  int fd = open(store_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct dirent *e;

  if (fd < 0 || (d = fdopendir(fd)) == NULL)
    {
      int saved = errno;
      if (fd >= 0)
        close(fd);
      return frc_error_errno(err, saved, "cannot list the environment's view `%s`: recreate the "
                                         "container (flox-runc gc removed its view?)",
                             store_dir);
    }
  while ((errno = 0, e = readdir(d)) != NULL)
    {
      char sp[sizeof("/nix/store/") + NAME_MAX];
      bool link = e->d_type == DT_LNK;
      if (e->d_name[0] == '.')
        continue;
      snprintf(sp, sizeof(sp), "/nix/store/%s", e->d_name);
      if (!frc_store_path_valid(sp))
        return frc_error(err, "`%s` in the view `%s` is not a store path: rebuild the view "
                              "(flox-runc gc)",
                         e->d_name, store_dir);
      if (e->d_type == DT_UNKNOWN)
        {
          struct stat st;
          if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return frc_error_errno(err, errno, "cannot stat `%s/%s`", store_dir, e->d_name);
          link = S_ISLNK(st.st_mode);
        }
      if (link) /* the view holds the symlink itself: no bind */
        continue;
      if (fn(e->d_name, data, err) < 0)
        return -1;
    }
  if (errno != 0)
    return frc_error_errno(err, errno, "cannot read the environment's view `%s`", store_dir);
  return 0;
}

/* The store path's name, or NULL when p is not /nix/store/<one component>. */
static const char *
store_name(const char *p)
{
  const char *name;
  if (strncmp(p, STORE_DIR, strlen(STORE_DIR)) != 0)
    return NULL;
  name = p + strlen(STORE_DIR);
  if (name[0] == '\0' || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0
      || strlen(name) > NAME_MAX)
    return NULL;
  return name;
}

/* mount(2) of src onto dst through /proc/self/fd, then the read-only
 * remount of the new mount (opened again: dst names what lies under it),
 * keeping the flags a user namespace locks (noexec and the atime ones). */
static int
bind_legacy(int src, int dst, int parent, const char *name, bool ro, frc_error_t *err)
{
  char from[64], to[64];
  cleanup_close int top = -1;
  struct statvfs sv;
  unsigned long flags = MS_BIND | MS_REMOUNT | (ro ? MS_RDONLY : 0) | MS_NOSUID | MS_NODEV;

  snprintf(from, sizeof(from), "/proc/self/fd/%d", src);
  snprintf(to, sizeof(to), "/proc/self/fd/%d", dst);
  if (mount(from, to, NULL, MS_BIND, NULL) < 0)
    return frc_error_errno(err, errno, "cannot bind `%s` into the container", name);
  top = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (top < 0 || fstatvfs(top, &sv) < 0)
    return frc_error_errno(err, errno, "cannot open the bind of `%s`", name);
  flags |= (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0) | (sv.f_flag & ST_NOATIME ? MS_NOATIME : 0)
           | (sv.f_flag & ST_NODIRATIME ? MS_NODIRATIME : 0)
           | (sv.f_flag & ST_RELATIME ? MS_RELATIME : 0);
  snprintf(to, sizeof(to), "/proc/self/fd/%d", top);
  if (mount(NULL, to, NULL, flags, NULL) < 0)
    return frc_error_errno(err, errno, "cannot set the flags of the bind of `%s`", name);
  return 0;
}

/* The detached clone tree gets attr (NULL: it has its flags already) and
 * goes onto at in dst (never followed; "": dst itself).  1: done, 0: this
 * kernel lacks the new mount API, -1: error. */
static int
attach_clone(int tree, int dst, const char *at, const struct mount_attr *attr, const char *name,
             frc_error_t *err)
{
  if (attr && mount_setattr(tree, "", AT_EMPTY_PATH, (struct mount_attr *) attr, sizeof(*attr)) < 0)
    {
      if (errno == ENOSYS)
        return 0;
      return frc_error_errno(err, errno, "cannot set the flags of the bind of `%s`", name);
    }
  if (move_mount(tree, "", dst, at, MOVE_MOUNT_F_EMPTY_PATH | (at[0] ? 0 : MOVE_MOUNT_T_EMPTY_PATH)) < 0)
    return frc_error_errno(err, errno, "cannot bind `%s` into the container", name);
  return 1;
}

/* 1: done, 0: this kernel lacks the new mount API, -1: error. */
static int
bind_new(int src, int dst, const char *name, bool ro, frc_error_t *err)
{
  struct mount_attr attr = { .attr_set = (ro ? MOUNT_ATTR_RDONLY : 0) | MOUNT_ATTR_NOSUID
                                         | MOUNT_ATTR_NODEV,
                             .attr_clr = ro ? 0 : MOUNT_ATTR_RDONLY };
  cleanup_close int tree = open_tree(src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);

  if (tree < 0 && errno == ENOSYS)
    return 0;
  if (tree < 0)
    return frc_error_errno(err, errno, "cannot clone the store path `%s`", name);
  return attach_clone(tree, dst, "", &attr, name, err);
}

/* src and dst are both directories or both not, neither a symlink. */
static int
types_match(const struct stat *sst, const struct stat *dst_st, const char *name, frc_error_t *err)
{
  if (S_ISLNK(sst->st_mode) || S_ISLNK(dst_st->st_mode)
      || S_ISDIR(sst->st_mode) != S_ISDIR(dst_st->st_mode))
    return frc_error(err, "`%s` in the container does not match its source's type: rebuild "
                          "the view (flox-runc gc) or remove what the image has there",
                     name);
  return 0;
}

static int
same_type(int src, int dst, const char *name, frc_error_t *err)
{
  struct stat sst, dst_st;
  if (fstat(src, &sst) < 0 || fstat(dst, &dst_st) < 0)
    return frc_error_errno(err, errno, "cannot stat the bind of `%s`", name);
  return types_match(&sst, &dst_st, name, err);
}

/* Binds src onto dst (dst opened O_PATH|O_NOFOLLOW as name in parent),
 * read-only or not, nosuid, nodev, when both are directories or both are
 * not (symlinks never). */
static int
bind_one(int src, int dst, int parent, const char *name, bool ro, bool legacy, frc_error_t *err)
{
  int r = 0;

  if (same_type(src, dst, name, err) < 0)
    return -1;
  if (!legacy)
    r = bind_new(src, dst, name, ro, err);
  if (r < 0)
    return -1;
  if (r == 0 && bind_legacy(src, dst, parent, name, ro, err) < 0)
    return -1;
  return 0;
}

/* A closure path by the new mount API, cloned straight from the node
 * store's directory pstore by name (not followed: a symlink's clone fails
 * the type check), onto its mount point name in the container's store,
 * also by name and never followed (move_mount without
 * MOVE_MOUNT_T_SYMLINKS): no descriptor is opened for either side (150
 * paths: ~0.4 ms and ~0.2 ms, docs/performance.md "Lever: the warm
 * start's parts (warm4)", "Lever: the closure hook by name").  No other
 * process changes the container's store between the type check and the
 * move: the view is flox-runc's, and the container's processes have not
 * started.  1: done, 0: this kernel lacks the new mount API, -1: error. */
static int
bind_store_path(int pstore, int store, const char *prefix, const char *name, frc_error_t *err)
{
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
  cleanup_close int tree = -1;
  struct stat sst, dst_st;
  bool with_attr = false;

  /* Linux 6.15's open_tree_attr clones with the flags set: one syscall a
   * path fewer (mount_setattr, which takes the namespace lock) */
  tree = (int) syscall(SYS_OPEN_TREE_ATTR, pstore, name,
                       OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW, &attr, sizeof(attr));
  if (tree >= 0)
    with_attr = true;
  else if (errno == ENOSYS || errno == EINVAL)
    tree = open_tree(pstore, name, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
  if (tree < 0 && errno == ENOSYS)
    return 0;
  if (tree < 0)
    {
      int e = errno;
      cleanup_free char *phys = xasprintf("%s" STORE_DIR "%s", prefix, name);
      return frc_error_errno(err, e, "closure path `%s` is missing from the store", phys);
    }
  if (fstatat(store, name, &dst_st, AT_SYMLINK_NOFOLLOW) < 0)
    return frc_error_errno(err, errno, "no mount point for `%s` in the container's /nix/store", name);
  if (fstat(tree, &sst) < 0)
    return frc_error_errno(err, errno, "cannot stat the bind of `%s`", name);
  if (types_match(&sst, &dst_st, name, err) < 0)
    return -1;
  return attach_clone(tree, store, name, with_attr ? NULL : &attr, name, err);
}

/* The closure path name of the node's store (its directory opened into
 * *pstore on first use) onto its mount point in the container's store; by
 * the new mount API unless *legacy, which becomes true on a kernel without
 * it. */
static int
bind_closure_path(int *pstore, int store, const char *prefix, const char *name, bool *legacy,
                  frc_error_t *err)
{
  cleanup_free char *phys = NULL;
  cleanup_close int src = -1, dst = -1;

  if (!*legacy && *pstore < 0)
    {
      cleanup_free char *dir = xasprintf("%s" STORE_DIR, prefix);
      *pstore = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (*pstore < 0)
        return frc_error_errno(err, errno, "cannot open the store `%s`", dir);
    }
  if (!*legacy)
    {
      int r = bind_store_path(*pstore, store, prefix, name, err);
      if (r != 0)
        return r < 0 ? -1 : 0;
      *legacy = true; /* no new mount API: mount(2) from here on */
    }
  phys = xasprintf("%s" STORE_DIR "%s", prefix, name);
  src = open(phys, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (src < 0)
    return frc_error_errno(err, errno, "closure path `%s` is missing from the store", phys);
  dst = openat(store, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (dst < 0)
    return frc_error_errno(err, errno, "no mount point for `%s` in the container's /nix/store", name);
  return bind_one(src, dst, store, name, true, true, err);
}

/* bind_closure_path for each closure path of the view's store directory */
struct view_binds
{
  int *pstore, store;
  const char *prefix;
  bool *legacy;
};

static int
bind_view_entry(const char *name, void *data, frc_error_t *err)
{
  struct view_binds *v = data;
  return bind_closure_path(v->pstore, v->store, v->prefix, name, v->legacy, err);
}

static int
bind_view(const char *view_store, int store, const char *prefix, bool *legacy, frc_error_t *err)
{
  cleanup_close int pstore = -1;
  struct view_binds v = { &pstore, store, prefix, legacy };
  return frc_view_each_bind(view_store, bind_view_entry, &v, err);
}

int
frc_bindhook_bind_view(const char *view_store, int store, const char *prefix, frc_error_t *err)
{
  bool legacy = false;
  return bind_view(view_store, store, prefix, &legacy, err);
}

/* The closure from the view's pin (lib/viewpin.h): /store of the pinned
 * namespace, with every closure path's bind below it, cloned in one
 * open_tree and moved onto the container's /nix/store (store, "store" in
 * nix), when it is the pin of this very view (the clone's root is the
 * container's /nix/store directory, the view's).  1: done; 0: no usable pin
 * (missing, a plain file a reboot left, another view's, a kernel without
 * the new mount API): bind path by path; -1: error. */
static int
bind_pinned(const char *pin, unsigned long long ns_ino, int nix, int store, frc_error_t *err)
{
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
  cleanup_close int ns = open(pin, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  cleanup_close int own = -1, tree = -1;
  struct stat want, got;

  /* the very namespace create pinned (a namespace's inode number is its
   * own while it lives), whatever /proc/PID/root leads to by now */
  if (ns < 0 || fstat(ns, &got) < 0 || (unsigned long long) got.st_ino != ns_ino)
    return 0;
  own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (own < 0 || setns(ns, CLONE_NEWNS) < 0)
    return 0;
  tree = open_tree(AT_FDCWD, FRC_VIEWPIN_STORE, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  /* nothing but this clone is done in the pinned namespace */
  if (setns(own, CLONE_NEWNS) < 0)
    return frc_error_errno(err, errno, "cannot return to the container's mount namespace");
  if (tree < 0 || fstat(tree, &got) < 0 || fstat(store, &want) < 0 || got.st_dev != want.st_dev
      || got.st_ino != want.st_ino)
    return 0;
  /* every mount of the clone read-only, nosuid, nodev, whatever the pin
   * holds (one call for the tree) */
  if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
    return 0;
  if (move_mount(tree, "", nix, "store", MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return frc_error_errno(err, errno, "cannot bind the closure into the container's /nix/store");
  return 1;
}

/* The mount point rel (relative; components neither empty, "." nor "..")
 * below dir, never through a symlink: each directory opened O_NOFOLLOW and,
 * with create, made (0755) when missing, as the runtime makes a spec
 * mount's; the last one too (a directory when is_dir, else an empty file).
 * Returns its O_PATH descriptor, its directory's in *parent, its name in
 * name; -1 on error. */
static int
open_mount_point(int dir, const char *rel, bool create, bool is_dir, int *parent,
                 char name[NAME_MAX + 1], frc_error_t *err)
{
  int cur = dup(dir);
  const char *p = rel;

  *parent = -1;
  if (cur < 0)
    return frc_error_errno(err, errno, "cannot open the container's root");
  for (;;)
    {
      const char *slash = strchr(p, '/');
      size_t len = slash ? (size_t) (slash - p) : strlen(p);
      bool last = slash == NULL;
      int next;

      if (len == 0 || len > NAME_MAX || (len == 1 && p[0] == '.')
          || (len == 2 && p[0] == '.' && p[1] == '.'))
        {
          close(cur);
          return frc_error(err, FRC_BINDHOOK_VERB ": `%s` is not a plain path", rel);
        }
      memcpy(name, p, len);
      name[len] = '\0';
      next = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
      if (next < 0 && errno == ENOENT && create)
        {
          if (!last || is_dir)
            {
              if (mkdirat(cur, name, 0755) < 0 && errno != EEXIST)
                goto fail;
            }
          else
            {
              int f = openat(cur, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
              if (f < 0 && errno != EEXIST)
                goto fail;
              if (f >= 0)
                close(f);
            }
          next = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
        }
      if (next < 0)
        goto fail;
      if (last)
        {
          *parent = cur;
          return next;
        }
      close(cur);
      cur = next;
      p = slash + 1;
    }
fail:
  {
    int e = errno;
    close(cur);
    return frc_error_errno(err, e, "no mount point `%s` in the container (a symlink there is "
                                   "never followed)",
                           rel);
  }
}

int
frc_bindhook_run(const char *bundle, int argc, char *const *argv, bool legacy, frc_error_t *err)
{
  const char *nix_source, *prefix;
  cleanup_free char *rootfs = NULL;
  cleanup_close int root = -1, nix = -1, store = -1, pstore = -1;
  const char *pin = NULL;
  unsigned long long pin_ino = 0;
  struct stat want, got;

  if (argc < 3)
    return frc_error(err, "usage: flox-runc " FRC_BINDHOOK_VERB
                          " ROOT NIX_SOURCE STORE_PREFIX [STORE_PATH | " FRC_ENVS_DIR
                          "/KEY | " FRC_BINDHOOK_VIEW_STORE " DIR | --bind-ro SRC DST | --bind-rw SRC "
                          "DST]... (the runtime runs it as a createContainer hook that flox-runc "
                          "writes)");
  nix_source = argv[1], prefix = argv[2];
  if (nix_source[0] != '/' || (prefix[0] != '\0' && prefix[0] != '/'))
    return frc_error(err, FRC_BINDHOOK_VERB ": NIX_SOURCE and a non-empty STORE_PREFIX must be "
                          "absolute paths");
  if (argv[0][0] == '/')
    rootfs = xstrdup(argv[0]);
  else if (bundle && bundle[0] == '/')
    rootfs = xasprintf("%s/%s", bundle, argv[0]);
  else
    {
      cleanup_free char *esc = escape_for_message(argv[0], strlen(argv[0]), 64);
      return frc_error(err, FRC_BINDHOOK_VERB ": the root `%s` is relative and the runtime's "
                            "state on stdin names no absolute bundle",
                       esc);
    }
  root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return frc_error_errno(err, errno, "cannot open the container's root `%s`", rootfs);
  /* the spec's /nix, not an image's symlink or directory */
  nix = openat(root, "nix", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (nix < 0 || fstat(nix, &got) < 0)
    return frc_error_errno(err, errno, "the container's /nix is not a directory: the image must "
                                       "not have /nix as a symlink");
  if (stat(nix_source, &want) < 0)
    return frc_error_errno(err, errno, "cannot stat `%s`", nix_source);
  if (want.st_dev != got.st_dev || want.st_ino != got.st_ino)
    return frc_error(err, "the container's /nix is not `%s` (flox-runc's view): another mount "
                          "covers it; remove that volume",
                     nix_source);
  store = openat(nix, "store", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (store < 0)
    return frc_error_errno(err, errno, "the container's /nix has no store directory");
  for (int i = 3; i < argc; i++)
    {
      const char *name = store_name(argv[i]);
      cleanup_free char *phys = NULL;
      cleanup_close int src = -1, dst = -1, parent = -1;
      char leaf[NAME_MAX + 1];
      bool ro = true;

      if (strcmp(argv[i], "--bind-ro") == 0 || strcmp(argv[i], "--bind-rw") == 0)
        {
          /* a node file or directory (followed, as the runtime opens a
           * spec mount's source) onto DST in the container's root */
          const char *from = i + 2 < argc ? argv[i + 1] : "", *to = i + 2 < argc ? argv[i + 2] : "";
          struct stat sst;
          ro = argv[i][8] == 'o';
          i += 2;
          if (from[0] != '/' || to[0] != '/')
            return frc_error(err, FRC_BINDHOOK_VERB ": --bind-ro and --bind-rw take an absolute "
                                                    "source and destination");
          if (strcmp(to, "/nix") == 0 || str_has_prefix(to, "/nix/"))
            return frc_error(err, FRC_BINDHOOK_VERB ": `%s` is in the container's /nix", to);
          src = open(from, O_PATH | O_CLOEXEC);
          if (src < 0 || fstat(src, &sst) < 0)
            return frc_error_errno(err, errno, "cannot open `%s` to bind it into the container",
                                   from);
          dst = open_mount_point(root, to + 1, true, S_ISDIR(sst.st_mode), &parent, leaf, err);
          if (dst < 0 || bind_one(src, dst, parent, leaf, ro, legacy, err) < 0)
            return -1;
          continue;
        }
      if (strcmp(argv[i], FRC_BINDHOOK_VIEW_PIN) == 0)
        {
          char *end = NULL;
          if (i + 2 >= argc || argv[i + 1][0] != '/' || !isdigit((unsigned char) argv[i + 2][0])
              || (errno = 0, pin_ino = strtoull(argv[i + 2], &end, 10), errno != 0 || *end != '\0'))
            return frc_error(err, FRC_BINDHOOK_VERB ": " FRC_BINDHOOK_VIEW_PIN
                                                    " takes an absolute path and an inode number");
          pin = argv[i + 1];
          i += 2;
          continue;
        }
      if (strcmp(argv[i], FRC_BINDHOOK_VIEW_STORE) == 0)
        {
          int r = 0;
          if (i + 1 >= argc || argv[i + 1][0] != '/')
            return frc_error(err, FRC_BINDHOOK_VERB ": " FRC_BINDHOOK_VIEW_STORE
                                                    " takes an absolute directory");
          if (pin && !legacy)
            r = bind_pinned(pin, pin_ino, nix, store, err);
          if (r < 0 || (r == 0 && bind_view(argv[i + 1], store, prefix, &legacy, err) < 0))
            return -1;
          i++;
          continue;
        }
      if (name == NULL && str_has_prefix(argv[i], FRC_ENVS_DIR "/"))
        {
          /* the environment's tree, in the view's var/flox-runc/envs/ */
          const char *key = argv[i] + strlen(FRC_ENVS_DIR "/");
          if (key[0] != '\0' && strchr(key, '/') == NULL && strcmp(key, ".") != 0
              && strcmp(key, "..") != 0)
            {
              phys = xasprintf("%s%s", prefix, argv[i]);
              src = open(phys, O_PATH | O_NOFOLLOW | O_CLOEXEC);
              if (src < 0)
                return frc_error_errno(err, errno, "the environment's tree `%s` is missing", phys);
              dst = open_mount_point(nix, argv[i] + strlen("/nix/"), false, true, &parent, leaf, err);
              if (dst < 0 || bind_one(src, dst, parent, leaf, true, legacy, err) < 0)
                return -1;
              continue;
            }
        }
      if (name == NULL)
        {
          cleanup_free char *esc = escape_for_message(argv[i], strlen(argv[i]), 64);
          return frc_error(err, FRC_BINDHOOK_VERB ": `%s` is not a store path", esc);
        }
      if (bind_closure_path(&pstore, store, prefix, name, &legacy, err) < 0)
        return -1;
    }
  return 0;
}
