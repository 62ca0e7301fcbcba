/* The merged tree of an environment: walk every output in the node's store,
 * merge into an in-memory tree by priority, then write the tree out. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "envbuild.h"
#include "activate.h"
#include "json.h"
#include "linkpool.h"
#include "lockfile.h"
#include "util.h"

#define STORE_DIR "/nix/store"
#define STORE_PREFIX "/nix/store/"
#define STORE_PREFIX_LEN (sizeof(STORE_PREFIX) - 1)
#define MSG_MAX 300

#define OWNER_US (-1L) /* the activation files and their directory */

enum kind
{
  K_DIR,
  K_LINK,
  K_FILE, /* an activation file written from memory */
  K_RESERVED, /* a reserved name left absent (no hook): shadows packages */
};

struct node
{
  struct node *parent;
  struct node *hnext; /* hash chain */
  char *name;
  char *target; /* K_LINK: the logical path the symlink holds */
  char *ident; /* K_LINK: the resolved file when it differs from target */
  const char *data; /* K_FILE */
  size_t len;
  bool owns_data; /* data is this node's (a draft's, kept past its build) */
  long priority;
  long owner; /* index into in->pkgs or OWNER_US */
  enum kind kind;
  /* K_DIR: the one store directory it mirrors, and whether anything made it
   * differ from that directory (a merge, a skip, a shadowed entry).  An
   * unchanged mirror is written as one symlink, as Nix's buildEnv does. */
  char *src_dir;
  bool impure;
  bool seen; /* a draft's node the final tree kept or replaced */
  struct node **kids;
  size_t nkids, capkids;
};

/* Who a walk links for. */
struct src
{
  long owner;
  long priority;
  const char *store_path; /* of the output being walked */
};

struct ancestor
{
  dev_t dev;
  ino_t ino;
};

struct build
{
  const struct frc_envbuild_input *in;
  size_t max_depth, max_entries, max_dir_entries;
  int store_fd; /* <store_root>/nix/store */
  struct frc_linkpool pool; /* in->link_pool */
  char *store_phys;
  struct node *root;
  struct node **buckets;
  size_t nbuckets, nnodes;
  struct ancestor *anc; /* the source directories being walked, for loops */
  size_t nanc, capanc;
  struct frc_envbuild_stats st;
  char *envrc;
  size_t envrc_len;
  char *vars_json;
  size_t vars_json_len;
  char *hook; /* outdented */
  size_t hook_len;
  const char *out_dir;
  bool draft; /* writing a draft: nothing sealed, top-level directories real */
};

/* A draft written ahead (frc_envbuild_draft): its in-memory tree, each
 * node as it was written. */
struct frc_envbuild_draft
{
  struct node *root;
  bool expand_all;
};

/* ---- the in-memory tree ---- */

static size_t
hash_of(const struct node *parent, const char *name)
{
  uint64_t h = 1469598103934665603ULL;
  uintptr_t p = (uintptr_t) parent;
  for (size_t i = 0; i < sizeof(p); i++, p >>= 8)
    {
      h ^= (uint64_t) (p & 0xff);
      h *= 1099511628211ULL;
    }
  for (const unsigned char *c = (const unsigned char *) name; *c; c++)
    {
      h ^= *c;
      h *= 1099511628211ULL;
    }
  return (size_t) h;
}

static struct node *
lookup(struct build *b, struct node *parent, const char *name)
{
  for (struct node *n = b->buckets[hash_of(parent, name) & (b->nbuckets - 1)]; n; n = n->hnext)
    if (n->parent == parent && strcmp(n->name, name) == 0)
      return n;
  return NULL;
}

static void
grow_table(struct build *b)
{
  size_t nb = b->nbuckets * 2;
  struct node **buckets = xmalloc0(nb * sizeof(*buckets));
  for (size_t i = 0; i < b->nbuckets; i++)
    for (struct node *n = b->buckets[i], *next; n; n = next)
      {
        size_t h = hash_of(n->parent, n->name) & (nb - 1);
        next = n->hnext;
        n->hnext = buckets[h];
        buckets[h] = n;
      }
  free(b->buckets);
  b->buckets = buckets;
  b->nbuckets = nb;
}

static struct node *
add_node(struct build *b, struct node *parent, const char *name, enum kind kind, long owner,
         long priority)
{
  struct node *n = xmalloc0(sizeof(*n));
  size_t h;

  n->parent = parent;
  n->name = xstrdup(name);
  n->kind = kind;
  n->owner = owner;
  n->priority = priority;
  if (parent->nkids == parent->capkids)
    {
      parent->capkids = parent->capkids ? parent->capkids * 2 : 4;
      parent->kids = xrealloc(parent->kids, parent->capkids * sizeof(*parent->kids));
    }
  parent->kids[parent->nkids++] = n;
  if (++b->nnodes > b->nbuckets)
    grow_table(b);
  h = hash_of(parent, name) & (b->nbuckets - 1);
  n->hnext = b->buckets[h];
  b->buckets[h] = n;
  return n;
}

static void
free_node(struct node *n)
{
  if (n == NULL)
    return;
  for (size_t i = 0; i < n->nkids; i++)
    free_node(n->kids[i]);
  free(n->kids);
  if (n->owns_data)
    free((char *) n->data);
  free(n->name);
  free(n->target);
  free(n->ident);
  free(n->src_dir);
  free(n);
}

/* dir and its ancestors no longer mirror a single store directory. */
static void
taint(struct node *dir)
{
  for (; dir && !dir->impure; dir = dir->parent)
    dir->impure = true;
}

static void
build_release(struct build *b)
{
  free_node(b->root);
  free(b->buckets);
  free(b->anc);
  free(b->store_phys);
  free(b->envrc);
  free(b->vars_json);
  free(b->hook);
  if (b->store_fd >= 0)
    close(b->store_fd);
  frc_linkpool_close(&b->pool);
}

/* ---- messages ---- */

static char *
msg_str(const char *s)
{
  return escape_for_message(s, strlen(s), MSG_MAX);
}

static char *
owner_label(const struct build *b, long owner, const struct src *s)
{
  if (owner >= 0)
    {
      const char *l = b->in->pkgs[owner].label;
      return msg_str(l && *l ? l : "(unnamed)");
    }
  return xstrdup("flox-runc");
}

/* ---- resolving a symlink inside the store ---- */

enum res
{
  RES_DIR,
  RES_FILE,
  RES_ESCAPE, /* leaves /nix/store/<entry> */
  RES_DANGLING, /* missing, a loop, too long, or a file used as a directory */
};

/* Resolves the absolute logical path p as the kernel would with the store
 * mounted at /nix, but looks only inside <store_root>/nix/store: "/", "/nix"
 * and "/nix/store" are taken as given and anything else outside a store entry
 * is an escape.  On RES_DIR and RES_FILE *out is the resolved logical path
 * and *st its lstat; on RES_ESCAPE *out is the path outside the store the
 * link leads to (lexically: nothing outside the store is looked at). */
static enum res
resolve(struct build *b, const char *p, char **out, struct stat *st)
{
  char done[PATH_MAX], todo[PATH_MAX], next_todo[PATH_MAX], target[PATH_MAX];
  size_t dlen = 0, pos = 0, depth = 0;
  int hops = 0;

  if (strlen(p) >= sizeof(todo))
    return RES_DANGLING;
  strcpy(todo, p);
  done[0] = '\0';
  for (;;)
    {
      const char *c;
      size_t clen, next, save;

      while (todo[pos] == '/')
        pos++;
      if (todo[pos] == '\0')
        break;
      c = todo + pos;
      clen = strcspn(c, "/");
      next = pos + clen;
      if (clen == 1 && c[0] == '.')
        {
          pos = next;
          continue;
        }
      if (clen == 2 && c[0] == '.' && c[1] == '.')
        {
          while (dlen > 0 && done[dlen - 1] != '/')
            dlen--;
          if (dlen > 0)
            {
              dlen--;
              depth--;
            }
          done[dlen] = '\0';
          pos = next;
          continue;
        }
      if (dlen + 1 + clen >= sizeof(done))
        return RES_DANGLING;
      save = dlen;
      done[dlen++] = '/';
      memcpy(done + dlen, c, clen);
      dlen += clen;
      done[dlen] = '\0';
      depth++;
      pos = next;
      if (depth == 1 || depth == 2)
        {
          if (strcmp(done, depth == 1 ? "/nix" : STORE_DIR) != 0)
            {
              const char *rest = todo + pos + strspn(todo + pos, "/");
              *out = *rest ? xasprintf("%s/%s", done, rest) : xstrdup(done);
              return RES_ESCAPE;
            }
          continue;
        }
      if (fstatat(b->store_fd, done + STORE_PREFIX_LEN, st, AT_SYMLINK_NOFOLLOW) < 0)
        return RES_DANGLING;
      if (S_ISLNK(st->st_mode))
        {
          ssize_t n;
          if (++hops > FRC_ENVBUILD_MAX_LINK_HOPS)
            return RES_DANGLING;
          n = readlinkat(b->store_fd, done + STORE_PREFIX_LEN, target, sizeof(target));
          if (n <= 0 || (size_t) n >= sizeof(target))
            return RES_DANGLING;
          target[n] = '\0';
          if ((size_t) snprintf(next_todo, sizeof(next_todo), "%s/%s", target, todo + pos)
              >= sizeof(next_todo))
            return RES_DANGLING;
          strcpy(todo, next_todo);
          pos = 0;
          if (target[0] == '/')
            dlen = depth = 0;
          else
            {
              dlen = save;
              depth--;
            }
          done[dlen] = '\0';
          continue;
        }
      if (!S_ISDIR(st->st_mode) && todo[pos + strspn(todo + pos, "/")] != '\0')
        return RES_DANGLING; /* a file used as a directory */
    }
  if (depth < 3)
    {
      *out = xstrdup(dlen ? done : "/");
      return RES_ESCAPE;
    }
  if (fstatat(b->store_fd, done + STORE_PREFIX_LEN, st, AT_SYMLINK_NOFOLLOW) < 0
      || S_ISLNK(st->st_mode))
    return RES_DANGLING;
  *out = xstrdup(done);
  return S_ISDIR(st->st_mode) ? RES_DIR : RES_FILE;
}

/* The lstat of the last sibling target resolve_sibling looked at in one
 * directory: busybox's ~270 applets all name "busybox". */
struct sibling
{
  char name[NAME_MAX + 1]; /* "" when none yet */
  int err; /* fstatat's errno, 0 when st holds its answer */
  struct stat st;
};

/* resolve() of src_dir/name for the common symlink whose target is one name
 * beside it (busybox's applets, "libfoo.so -> libfoo.so.1"): src_dir is a
 * resolved logical directory (no symlink on the way) and dfd that directory
 * opened without following any, so the answer is the sibling's lstat
 * (two system calls instead of resolve()'s walk over every component; one
 * when the sibling is the one *last looked at: the store does not change
 * while it is walked).  RES_ESCAPE stands for "not this case": the caller
 * resolves in full. */
static enum res
resolve_sibling(int dfd, const char *src_dir, const char *name, struct sibling *last, char **out,
                struct stat *st)
{
  char target[NAME_MAX + 1];
  ssize_t n = readlinkat(dfd, name, target, sizeof(target));

  if (n <= 0 || (size_t) n >= sizeof(target))
    return RES_ESCAPE;
  target[n] = '\0';
  if (memchr(target, '/', (size_t) n) != NULL || strcmp(target, ".") == 0
      || strcmp(target, "..") == 0)
    return RES_ESCAPE;
  if (strcmp(last->name, target) != 0)
    {
      last->err = fstatat(dfd, target, &last->st, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
      memcpy(last->name, target, (size_t) n + 1);
    }
  if (last->err != 0)
    return RES_DANGLING;
  *st = last->st;
  if (S_ISLNK(st->st_mode))
    return RES_ESCAPE; /* a chain: resolve() counts its hops */
  *out = xasprintf("%s/%s", src_dir, target);
  return S_ISDIR(st->st_mode) ? RES_DIR : RES_FILE;
}

/* Opens a resolved logical directory without following any symlink. */
static int
open_store_dir(struct build *b, const char *logical)
{
  struct open_how how = {
    .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  const char *rel = logical + STORE_PREFIX_LEN;
  int fd = (int) syscall(SYS_openat2, b->store_fd, rel, &how, sizeof(how));
  if (fd < 0 && (errno == ENOSYS || errno == EPERM))
    fd = openat(b->store_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return fd;
}

/* ---- the walk ---- */

/* A directory entry of the store: its name and the type readdir gave
 * (DT_UNKNOWN where the file system does not say). */
struct dent
{
  char *name;
  unsigned char type;
};

static int
cmp_dent(const void *a, const void *b)
{
  return strcmp(((const struct dent *) a)->name, ((const struct dent *) b)->name);
}

static void
dents_free(struct dent *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i].name);
  free(v);
}

/* The entries of the directory dfd (the source directory src), sorted by
 * name. */
static int
read_names(struct build *b, int dfd, const char *src, struct dent **names, size_t *n,
           frc_error_t *err)
{
  DIR *d;
  struct dirent *de;
  size_t cap = 0;
  int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);

  *names = NULL;
  *n = 0;
  if (fd < 0 || (d = fdopendir(fd)) == NULL)
    {
      int e = errno;
      cleanup_free char *m = msg_str(src);
      if (fd >= 0)
        close(fd);
      return frc_error_errno(err, e, "cannot read the directory `%s` in the store", m);
    }
  for (;;)
    {
      errno = 0;
      de = readdir(d);
      if (de == NULL)
        break;
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      if (*n >= b->max_dir_entries || b->st.entries >= b->max_entries)
        {
          cleanup_free char *m = msg_str(src);
          bool dir_bound = *n >= b->max_dir_entries;
          closedir(d);
          frc_error(err,
                    "the environment is too big: %s (at `%s`): the store contents are "
                    "unusual or hostile",
                    dir_bound ? "a directory has more entries than the bound"
                              : "the packages hold more entries than the bound",
                    m);
          return frc_error_code(err, FRC_ECODE_TOO_BIG);
        }
      if (*n == cap)
        {
          cap = cap ? cap * 2 : 16;
          *names = xrealloc(*names, cap * sizeof(**names));
        }
      (*names)[*n].name = xstrdup(de->d_name);
      (*names)[(*n)++].type = de->d_type;
      b->st.entries++;
    }
  if (errno != 0)
    {
      int e = errno;
      cleanup_free char *m = msg_str(src);
      closedir(d);
      return frc_error_errno(err, e, "cannot read the directory `%s` in the store", m);
    }
  closedir(d);
  if (*n > 1)
    qsort(*names, *n, sizeof(**names), cmp_dent);
  return 0;
}

/* Entries buildEnv leaves out of a directory it merges (builder.pl
 * findFiles:191-204): /nix-support, /propagated-build-inputs, a path ending
 * in info/dir, everything under share/mime/ but share/mime/packages, and
 * any entry named perllocal.pod or log.  A directory of one package is
 * linked whole (findFiles:210-219), these with it. */
static bool
ignored(const char *rel, const char *name)
{
  size_t n = strlen(rel);
  return strcmp(rel, "nix-support") == 0 || strcmp(rel, "propagated-build-inputs") == 0
         || (n >= 8 && strcmp(rel + n - 8, "info/dir") == 0)
         || (str_has_prefix(rel, "share/mime/") && !str_has_prefix(rel, "share/mime/packages"))
         || strcmp(name, "perllocal.pod") == 0 || strcmp(name, "log") == 0;
}

static bool
is_ancestor(const struct build *b, const struct stat *st)
{
  for (size_t i = 0; i < b->nanc; i++)
    if (b->anc[i].dev == st->st_dev && b->anc[i].ino == st->st_ino)
      return true;
  return false;
}

static int conflict(struct build *b, const struct node *old, const struct src *s, const char *rel,
                    bool new_is_dir, frc_error_t *err);

static int walk_dir(struct build *b, struct node *dir, int dfd, const char *src_dir,
                    const char *rel, size_t depth, const struct src *s, frc_error_t *err);

/* Merges the directory src (resolved logical path) into node. */
static int
descend(struct build *b, struct node *node, int parent_fd, const char *name, bool via_link,
        const char *src, const char *rel, size_t depth, const struct src *s, frc_error_t *err)
{
  cleanup_close int fd = -1;

  if (via_link)
    fd = open_store_dir(b, src);
  else
    fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      int e = errno;
      cleanup_free char *m = msg_str(src);
      return frc_error_errno(err, e, "cannot open the directory `%s` in the store", m);
    }
  return walk_dir(b, node, fd, src, rel, depth, s, err);
}

static int
walk_entry(struct build *b, struct node *dir, int dfd, const char *src_dir, const char *rel,
           size_t depth, const struct src *s, const struct dent *e, struct sibling *last,
           frc_error_t *err)
{
  const char *name = e->name;
  cleanup_free char *relpath = rel[0] ? xasprintf("%s/%s", rel, name) : xstrdup(name);
  cleanup_free char *src = xasprintf("%s/%s", src_dir, name);
  cleanup_free char *resolved = NULL;
  struct stat st;
  bool is_dir = false, via_link = false;
  struct node *old;

  if (depth + 1 > b->max_depth || strlen(src) >= PATH_MAX)
    {
      cleanup_free char *m = msg_str(src);
      frc_error(err,
                "the environment is too big: `%s` is deeper than the bound of %zu levels: the "
                "store contents are unusual or hostile",
                m, b->max_depth);
      return frc_error_code(err, FRC_ECODE_TOO_BIG);
    }
  /* left out of the tree, but a directory that stays one package's is
   * still linked whole (with it) as buildEnv links it */
  if (ignored(relpath, name))
    {
      b->st.skipped++;
      return 0;
    }
  /* the type readdir gave when it gave one (the store does not change
   * while it is walked): a stat fewer per entry */
  if (e->type == DT_DIR || e->type == DT_LNK || e->type == DT_REG)
    st.st_mode = e->type == DT_DIR ? S_IFDIR : e->type == DT_LNK ? S_IFLNK : S_IFREG;
  else if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      int en = errno;
      cleanup_free char *m = msg_str(src);
      return frc_error_errno(err, en, "cannot examine `%s` in the store", m);
    }
  if (S_ISDIR(st.st_mode))
    is_dir = true;
  else if (S_ISLNK(st.st_mode))
    {
      struct stat rst;
      enum res r = resolve_sibling(dfd, src_dir, name, last, &resolved, &rst);
      if (r == RES_ESCAPE)
        r = resolve(b, src, &resolved, &rst);
      if (r == RES_DIR && !is_ancestor(b, &rst))
        is_dir = via_link = true;
    }

  old = lookup(b, dir, name);
  if (old == NULL)
    {
      if (is_dir)
        {
          struct node *n = add_node(b, dir, name, K_DIR, s->owner, s->priority);
          n->src_dir = xstrdup(via_link ? resolved : src);
          return descend(b, n, dfd, name, via_link, via_link ? resolved : src, relpath, depth + 1,
                         s, err);
        }
      old = add_node(b, dir, name, K_LINK, s->owner, s->priority);
      old->target = steal_pointer(&src);
      old->ident = steal_pointer(&resolved);
      return 0;
    }
  if (old->kind == K_DIR && is_dir)
    {
      taint(old);
      return descend(b, old, dfd, name, via_link, via_link ? resolved : src, relpath, depth + 1, s,
                     err);
    }
  taint(dir);
  /* Packages come in priority order; a propagated one never conflicts
   * (builder.pl addPkg with ignoreCollisions = 2): what is
   * already there has the same or a higher precedence. */
  if (old->owner == OWNER_US || old->priority < s->priority
      || (s->owner >= 0 && b->in->pkgs[s->owner].propagated))
    {
      b->st.shadowed++;
      return 0;
    }
  if (old->kind == K_LINK && !is_dir
      && strcmp(old->ident ? old->ident : old->target, resolved ? resolved : src) == 0)
    {
      b->st.shadowed++; /* the same file: not a conflict */
      return 0;
    }
  return conflict(b, old, s, relpath, is_dir, err);
}

static int
walk_dir(struct build *b, struct node *dir, int dfd, const char *src_dir, const char *rel,
         size_t depth, const struct src *s, frc_error_t *err)
{
  struct dent *names = NULL;
  struct sibling last = { .name = "" };
  size_t n = 0;
  struct stat st;
  int rc = 0;

  if (read_names(b, dfd, src_dir, &names, &n, err) < 0)
    {
      dents_free(names, n);
      return -1;
    }
  if (fstat(dfd, &st) < 0)
    {
      dents_free(names, n);
      return frc_error_errno(err, errno, "cannot examine a directory in the store");
    }
  if (b->nanc == b->capanc)
    {
      b->capanc = b->capanc ? b->capanc * 2 : 32;
      b->anc = xrealloc(b->anc, b->capanc * sizeof(*b->anc));
    }
  b->anc[b->nanc].dev = st.st_dev;
  b->anc[b->nanc++].ino = st.st_ino;
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = walk_entry(b, dir, dfd, src_dir, rel, depth, s, &names[i], &last, err);
  b->nanc--;
  dents_free(names, n);
  return rc;
}

static int
conflict(struct build *b, const struct node *old, const struct src *s, const char *rel,
         bool new_is_dir, frc_error_t *err)
{
  cleanup_free char *a = owner_label(b, old->owner, NULL);
  cleanup_free char *c = owner_label(b, s->owner, s);
  cleanup_free char *p = msg_str(rel);
  cleanup_free char *kinds = NULL;

  if (old->owner == s->owner)
    return frc_error(err,
                     "package %s provides %s in two of its outputs (one is %s): an environment "
                     "cannot hold both",
                     a, p, s->store_path);
  if ((old->kind == K_DIR) != new_is_dir)
    kinds = old->kind == K_DIR ? xasprintf(" (a directory in %s, a file in %s)", a, c)
                               : xasprintf(" (a file in %s, a directory in %s)", a, c);
  return frc_error(err,
                   "packages %s and %s both provide %s at priority %ld%s: give one of them a "
                   "different priority in the manifest (priority = N)",
                   a, c, p, s->priority, kinds ? kinds : "");
}

/* Links one output (or propagated package) into the tree. */
static int
add_store_path(struct build *b, const char *path, const struct src *s, frc_error_t *err)
{
  bool lenient = s->owner >= 0 && b->in->pkgs[s->owner].propagated;
  cleanup_free char *label = owner_label(b, s->owner, NULL);
  cleanup_free char *m = NULL;
  cleanup_free char *resolved = NULL;
  cleanup_close int fd = -1;
  struct stat st;

  if (path == NULL || !frc_store_path_valid(path))
    {
      m = msg_str(path ? path : "(null)");
      return frc_error(err, "the store path `%s` of package %s is not a valid store path", m,
                       label);
    }
  m = msg_str(path);
  switch (resolve(b, path, &resolved, &st))
    {
    case RES_DANGLING:
      if (fstatat(b->store_fd, path + STORE_PREFIX_LEN, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          cleanup_free char *store = msg_str(b->store_phys);
          return frc_error(err, "the store path %s of package %s is not in the store (%s): "
                                "realise it before building the environment",
                           m, label, store);
        }
      return frc_error(err, "the store path %s of package %s is a symlink that leads nowhere in "
                            "the store",
                       m, label);
    case RES_ESCAPE:
      if (lenient)
        {
          b->st.skipped++;
          return 0;
        }
      return frc_error(err, "the store path %s of package %s links outside the store", m, label);
    case RES_FILE:
      if (lenient)
        {
          b->st.skipped++;
          return 0;
        }
      return frc_error(err, "the store path %s of package %s is a file, not a directory: it "
                            "cannot be merged into an environment",
                       m, label);
    case RES_DIR:
      break;
    }
  fd = open_store_dir(b, resolved);
  if (fd < 0)
    return frc_error_errno(err, errno, "cannot open the store path %s", m);
  return walk_dir(b, b->root, fd, resolved, "", 0, s, err);
}

/* ---- the activation files ---- */

static bool
shell_name_valid(const char *s)
{
  if (s == NULL || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
    return false;
  for (s++; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
          || *s == '_'))
      return false;
  return true;
}

static void
append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
  if (*len + n + 1 > *cap)
    {
      while (*len + n + 1 > *cap)
        *cap = *cap ? *cap * 2 : 256;
      *buf = xrealloc(*buf, *cap);
    }
  memcpy(*buf + *len, s, n);
  *len += n;
  (*buf)[*len] = '\0';
}

/* Whether b may appear in a shell variable name (not first when a digit). */
static bool
is_name_byte(char c, bool first)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* The vars' indexes sorted by name, to look a referenced name up. */
static int
by_name(const void *x, const void *y, void *names)
{
  return strcmp(((char *const *) names)[*(const size_t *) x], ((char *const *) names)[*(const size_t *) y]);
}

/* The first position in sorted whose name is (ref, len), else n. */
static size_t
find_name(char *const *names, const size_t *sorted, size_t n, const char *ref, size_t len)
{
  size_t lo = 0, hi = n;
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      const char *s = names[sorted[mid]];
      int c = strncmp(s, ref, len);
      if (c == 0 && s[len] != '\0')
        c = 1;
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo < n && strncmp(names[sorted[lo]], ref, len) == 0 && names[sorted[lo]][len] == '\0' ? lo : n;
}

/* The edges of var a: the vars its value references (not itself), as
 * Flox's referenced_keys (cli/flox-rust-sdk/src/providers/vars_order.rs:
 * 109-150) finds them: `$name`, or `${name` with a '}' somewhere after it,
 * a backslash escaping the next byte.  One pass over the value, each name
 * found looked up in the sorted names: linear in the value's length. */
static void
add_references(char *const *names, char *const *values, const size_t *sorted, size_t n, size_t a,
               bool *edge, size_t *indeg)
{
  const char *value = values[a];
  size_t len = strlen(value);
  const char *last_close = strrchr(value, '}');
  size_t close = last_close ? (size_t) (last_close - value) : 0;

  for (size_t i = 0; i < len;)
    {
      if (value[i] == '\\')
        i += 2;
      else if (value[i] == '$')
        {
          size_t j = i + 1, start;
          bool braced = j < len && value[j] == '{';
          if (braced)
            j++;
          start = j;
          while (j < len && is_name_byte(value[j], j == start))
            j++;
          if (j > start && (!braced || (last_close && close >= j)))
            for (size_t k = find_name(names, sorted, n, value + start, j - start);
                 k < n && strncmp(names[sorted[k]], value + start, j - start) == 0
                 && names[sorted[k]][j - start] == '\0';
                 k++)
              {
                size_t b = sorted[k];
                if (b != a && strcmp(names[b], names[a]) != 0 && !edge[a * n + b])
                  {
                    edge[a * n + b] = true;
                    indeg[a]++;
                  }
              }
          i = j;
        }
      else
        i++;
    }
}

int
frc_vars_render_order(char *const *names, char *const *values, size_t n, size_t *order,
                      frc_error_t *err)
{
  cleanup_free size_t *indeg = NULL;
  cleanup_free bool *done = NULL;
  cleanup_free bool *edge = NULL; /* edge[a*n+b]: a needs b */
  cleanup_free size_t *sorted = NULL;

  if (n > FRC_LOCK_VARS_MAX)
    return frc_error(err, "the manifest has %zu vars, more than the %u flox-runc accepts", n,
                     FRC_LOCK_VARS_MAX);
  indeg = xmalloc0((n + 1) * sizeof(size_t));
  done = xmalloc0((n + 1) * sizeof(bool));
  edge = xmalloc0((n * n + 1) * sizeof(bool));
  sorted = xmalloc0((n + 1) * sizeof(size_t));
  for (size_t i = 0; i < n; i++)
    sorted[i] = i;
  qsort_r(sorted, n, sizeof(size_t), by_name, (void *) names);
  for (size_t a = 0; a < n; a++)
    add_references(names, values, sorted, n, a, edge, indeg);
  /* Kahn's algorithm, the ready set taken in name order (Flox's BTreeSet):
   * independent vars keep their alphabetical place. */
  for (size_t k = 0; k < n; k++)
    {
      size_t best = n;
      for (size_t i = 0; i < n; i++)
        if (!done[i] && indeg[i] == 0 && (best == n || strcmp(names[i], names[best]) < 0))
          best = i;
      if (best == n)
        {
          cleanup_free char *m = NULL;
          for (size_t i = 0; i < n; i++)
            if (!done[i])
              {
                m = msg_str(names[i]);
                break;
              }
          return frc_error(err, "the manifest vars reference each other in a cycle (through `%s`): "
                                "break the cycle in the manifest's [vars]",
                           m);
        }
      done[best] = true;
      order[k] = best;
      for (size_t a = 0; a < n; a++)
        if (edge[a * n + best])
          indeg[a]--;
    }
  return 0;
}

char *
frc_outdent_text(const char *text)
{
  /* buildenv/buildenvLib/default.nix outdentText: split on "\n", the least
   * count of leading spaces over the non-empty lines (a tab is not
   * indentation), removed from every line; rejoined with "\n". */
  size_t min = (size_t) -1, len = strlen(text);
  char *out = xmalloc0(len + 1), *o = out;
  for (const char *l = text;;)
    {
      const char *nl = strchr(l, '\n');
      size_t ll = nl ? (size_t) (nl - l) : strlen(l), sp = 0;
      while (sp < ll && l[sp] == ' ')
        sp++;
      if (ll > 0 && sp < min)
        min = sp;
      if (nl == NULL)
        break;
      l = nl + 1;
    }
  for (const char *l = text;;)
    {
      const char *nl = strchr(l, '\n');
      size_t ll = nl ? (size_t) (nl - l) : strlen(l);
      size_t cut = ll < min ? ll : min;
      memcpy(o, l + cut, ll - cut);
      o += ll - cut;
      if (nl == NULL)
        break;
      *o++ = '\n';
      l = nl + 1;
    }
  *o = '\0';
  return out;
}

/* activate.d/envrc: `export NAME="value"` lines, the value verbatim (bash
 * expands it when activating), in Flox's render order (buildenv/buildenv.nix:56-86,
 * cli/flox-rust-sdk/src/providers/vars_order.rs). */
static int
make_envrc(struct build *b, frc_error_t *err)
{
  const struct frc_envbuild_input *in = b->in;
  size_t cap = 0;
  cleanup_json yajl_val vars = frc_json_new_object();
  cleanup_free size_t *order = xmalloc0((in->nvars + 1) * sizeof(size_t));

  b->envrc = xstrdup("");
  for (size_t i = 0; i < in->nvars; i++)
    {
      const char *name = in->var_names[i], *v = in->var_values[i];
      if (!shell_name_valid(name) || v == NULL)
        {
          cleanup_free char *m = msg_str(name ? name : "(null)");
          return frc_error(err,
                           "the manifest var `%s` is not a valid shell variable name (letters, "
                           "digits and _, not starting with a digit)",
                           m);
        }
      /* buildenv/buildenv.nix:59-68 */
      if (str_has_prefix(name, "BASH_ENVTRACE_"))
        {
          cleanup_free char *m = msg_str(name);
          return frc_error(err, "the manifest var `%s` is reserved (BASH_ENVTRACE_*), Flox refuses "
                                "it too: rename it in the manifest's [vars]",
                           m);
        }
    }
  if (frc_vars_render_order(in->var_names, in->var_values, in->nvars, order, err) < 0)
    return -1;
  for (size_t k = 0; k < in->nvars; k++)
    {
      const char *name = in->var_names[order[k]], *v = in->var_values[order[k]];
      append(&b->envrc, &b->envrc_len, &cap, "export ", 7);
      append(&b->envrc, &b->envrc_len, &cap, name, strlen(name));
      append(&b->envrc, &b->envrc_len, &cap, "=\"", 2);
      append(&b->envrc, &b->envrc_len, &cap, v, strlen(v));
      append(&b->envrc, &b->envrc_len, &cap, "\"\n", 2);
    }
  /* Dev mode: then the packages' plugin profile.d scripts, as Flox's
   * activate sources them after [vars] (activate:272-284,
   * activate.d/helpers.bash:80-105): every *.sh of the environment's
   * etc/profile.d in glob order but those named as the interpreter's own,
   * under envrc's `set -euo pipefail`, in a function as Flox's are (a
   * script's `local` works).  The environment is found from this
   * file's own path, which a var named FLOX_ENV cannot change; a dangling
   * link fails as Flox's `source` of it does.  Sourced only when the
   * activation runs bash (frc_activation_wants_bash). */
  if (in->mode == FRC_ENVBUILD_DEV)
    {
      static const char plugins[] =
          "__flox_runc_plugins() {\n"
          "  local __flox_runc_s\n"
          "  for __flox_runc_s in \"${BASH_SOURCE[0]%/activate.d/envrc}\"/etc/profile.d/*.sh; do\n"
          "    case ${__flox_runc_s##*/} in " FRC_INTERPRETER_PROFILE_D ") continue ;; esac\n"
          "    if [[ -e $__flox_runc_s || -L $__flox_runc_s ]]; then . \"$__flox_runc_s\"; fi\n"
          "  done\n"
          "}\n"
          "__flox_runc_plugins\n"
          "unset -f __flox_runc_plugins\n";
      append(&b->envrc, &b->envrc_len, &cap, plugins, sizeof(plugins) - 1);
    }
  for (size_t i = 0; i < in->nvars; i++)
    frc_json_set(vars, in->var_names[i], frc_json_new_string(in->var_values[i]));
  {
    size_t n;
    cleanup_free char *j = frc_json_serialize(vars, &n);
    b->vars_json = xasprintf("%s\n", j);
    b->vars_json_len = n + 1;
  }
  if (in->hook)
    {
      b->hook = frc_outdent_text(in->hook);
      b->hook_len = strlen(b->hook);
    }
  return 0;
}

static void
add_file(struct build *b, struct node *dir, const char *name, const char *data, size_t len)
{
  struct node *n = add_node(b, dir, name, data ? K_FILE : K_RESERVED, OWNER_US, LONG_MIN);
  n->data = data;
  n->len = len;
}

/* ---- writing the tree ---- */

static const struct timespec one_second[2] = { { 1, 0 }, { 1, 0 } };

static int
cmp_node(const void *a, const void *b)
{
  return strcmp((*(struct node *const *) a)->name, (*(struct node *const *) b)->name);
}

static int
write_error(frc_error_t *err, int e, const char *what, const char *rel, const char *name)
{
  cleanup_free char *p = rel[0] ? xasprintf("%s/%s", rel, name) : xstrdup(name);
  cleanup_free char *m = msg_str(p);
  return frc_error_errno(err, e, "cannot %s `%s` in the environment", what, m);
}

static int
seal(int fd, mode_t mode)
{
  return fchmod(fd, mode) < 0 || futimens(fd, one_second) < 0 ? -1 : 0;
}

/* A symlink of the tree, its time 1: from the node's pool when there is
 * one (lib/linkpool.h). */
static int
make_link(struct build *b, int dfd, const char *target, const char *name)
{
  bool shared;
  if (frc_linkpool_symlink(&b->pool, target, dfd, name, one_second, &shared) < 0)
    return -1;
  b->st.links++;
  b->st.shared += shared;
  return 0;
}

/* What a node is on the disk when it is a symlink (a link, or a directory
 * that mirrors one store directory unchanged, written as one symlink to
 * it): its target; NULL when it is not one. */
static const char *
as_symlink(const struct node *k, bool expand_all)
{
  if (k->kind == K_LINK)
    return k->target;
  if (k->kind == K_DIR && k->src_dir && !k->impure && !expand_all)
    return k->src_dir;
  return NULL;
}

static bool
real_dir(const struct node *k, bool expand_all)
{
  return k->kind == K_DIR && as_symlink(k, expand_all) == NULL;
}

/* The draft's entry named name in its directory was (kids sorted). */
static struct node *
draft_kid(const struct node *was, const char *name)
{
  size_t lo = 0, hi = was->nkids;
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      int c = strcmp(was->kids[mid]->name, name);
      if (c == 0)
        return was->kids[mid];
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  return NULL;
}

/* Removes what the draft wrote at dfd/name (s) that the tree does not keep. */
static int
unwrite(struct build *b, const struct node *s, int dfd, const char *rel, frc_error_t *err)
{
  if (real_dir(s, b->in->draft->expand_all))
    {
      cleanup_free char *p = rel[0] ? xasprintf("%s/%s/%s", b->out_dir, rel, s->name)
                                    : xasprintf("%s/%s", b->out_dir, s->name);
      return frc_rm_rf(p, err);
    }
  if (s->kind == K_RESERVED || unlinkat(dfd, s->name, 0) == 0 || errno == ENOENT)
    return 0;
  return write_error(err, errno, "remove the draft's", rel, s->name);
}

/* Writes dir's entries into dfd.  was: what a draft (frc_envbuild_draft)
 * wrote there, a real directory of it, or NULL: an entry the draft wrote
 * exactly as the tree has it stays (a real directory is completed), any
 * other is removed before the tree's own is written. */
static int
materialize(struct build *b, struct node *dir, int dfd, const char *rel, struct node *was,
            frc_error_t *err)
{
  bool dexp = b->in->draft ? b->in->draft->expand_all : false;
  if (dir->nkids > 1)
    qsort(dir->kids, dir->nkids, sizeof(*dir->kids), cmp_node);
  for (size_t i = 0; i < dir->nkids; i++)
    {
      struct node *k = dir->kids[i];
      struct node *s = was ? draft_kid(was, k->name) : NULL;
      struct node *sub = NULL;
      cleanup_close int fd = -1;
      if (s)
        {
          const char *kt = as_symlink(k, b->in->expand_all), *sl = as_symlink(s, dexp);
          s->seen = true;
          if (kt && sl && strcmp(kt, sl) == 0)
            {
              b->st.links++; /* the draft's symlink is the tree's */
              continue;
            }
          if (k->kind == K_FILE && s->kind == K_FILE && k->len == s->len
              && memcmp(k->data, s->data, k->len) == 0)
            {
              b->st.files++; /* the draft's activation file is the tree's */
              continue;
            }
          if (real_dir(k, b->in->expand_all) && real_dir(s, dexp))
            sub = s; /* completed below */
          else if (unwrite(b, s, dfd, rel, err) < 0)
            return -1;
        }
      switch (k->kind)
        {
        case K_DIR:
          {
            cleanup_free char *path = rel[0] ? xasprintf("%s/%s", rel, k->name) : xstrdup(k->name);
            if (as_symlink(k, b->in->expand_all))
              {
                if (make_link(b, dfd, k->src_dir, k->name) < 0)
                  return write_error(err, errno, "create the symlink", rel, k->name);
                break;
              }
            if (sub == NULL && mkdirat(dfd, k->name, 0755) < 0)
              return write_error(err, errno, "create the directory", rel, k->name);
            fd = openat(dfd, k->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0)
              return write_error(err, errno, "open the directory", rel, k->name);
            if (materialize(b, k, fd, path, sub, err) < 0)
              return -1;
            if (!b->draft && seal(fd, 0555) < 0)
              return write_error(err, errno, "set the mode of", rel, k->name);
            b->st.dirs++;
            break;
          }
        case K_LINK:
          if (make_link(b, dfd, k->target, k->name) < 0)
            return write_error(err, errno, "create the symlink", rel, k->name);
          break;
        case K_FILE:
          fd = openat(dfd, k->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
          if (fd < 0)
            return write_error(err, errno, "create", rel, k->name);
          if (write_all(fd, k->data, k->len) < 0 || seal(fd, 0444) < 0)
            return write_error(err, errno, "write", rel, k->name);
          b->st.files++;
          break;
        case K_RESERVED:
          break;
        }
    }
  /* what the draft wrote that the tree has no entry for */
  for (size_t i = 0; was && i < was->nkids; i++)
    if (!was->kids[i]->seen && unwrite(b, was->kids[i], dfd, rel, err) < 0)
      return -1;
  return 0;
}

/* ---- the whole build ---- */

struct order
{
  long priority;
  size_t index;
};

static int
cmp_order(const void *a, const void *b)
{
  const struct order *x = a, *y = b;
  if (x->priority != y->priority)
    return x->priority < y->priority ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static int
build_tree(struct build *b, frc_error_t *err)
{
  const struct frc_envbuild_input *in = b->in;
  cleanup_free struct order *order = xmalloc0((in->npkgs + 1) * sizeof(*order));
  struct node *ad;

  b->root = xmalloc0(sizeof(*b->root));
  b->root->name = xstrdup("");
  b->root->kind = K_DIR;
  b->root->owner = OWNER_US;
  b->root->priority = LONG_MIN;
  b->nbuckets = 1024;
  b->buckets = xmalloc0(b->nbuckets * sizeof(*b->buckets));

  /* The activation files come first and win over any package. */
  if (make_envrc(b, err) < 0)
    return -1;
  ad = add_node(b, b->root, "activate.d", K_DIR, OWNER_US, LONG_MIN);
  add_file(b, b->root, "manifest.lock", in->lockfile, in->lockfile_len);
  add_file(b, ad, "envrc", b->envrc, b->envrc_len);
  add_file(b, ad, "vars.json", b->vars_json, b->vars_json_len);
  add_file(b, ad, "hook-on-activate", b->hook, b->hook_len);

  /* Packages by priority (lockfile order among equals): whatever is in the
   * tree then has the same or a higher precedence than what comes. */
  for (size_t i = 0; i < in->npkgs; i++)
    {
      order[i].priority = in->pkgs[i].priority;
      order[i].index = i;
    }
  qsort(order, in->npkgs, sizeof(*order), cmp_order);
  for (size_t i = 0; i < in->npkgs; i++)
    {
      const struct frc_envbuild_pkg *p = &in->pkgs[order[i].index];
      struct src s = { .owner = (long) order[i].index, .priority = p->priority };
      for (char *const *o = p->store_paths; o && *o; o++)
        {
          s.store_path = *o;
          if (add_store_path(b, *o, &s, err) < 0)
            return -1;
        }
    }
  return 0;
}

/* A draft's activation files keep their text past its build. */
static void
own_files(struct node *n)
{
  if (n->kind == K_FILE && !n->owns_data)
    {
      char *d = xmalloc0(n->len + 1);
      memcpy(d, n->data, n->len);
      n->data = d;
      n->owns_data = true;
    }
  for (size_t i = 0; i < n->nkids; i++)
    own_files(n->kids[i]);
}

static int
run_build(const struct frc_envbuild_input *in, const char *out_dir, bool draft,
          struct frc_envbuild_stats *stats, struct node **keep, frc_error_t *err)
{
  struct build b = { .in = in, .store_fd = -1, .pool = { .fd = -1 }, .out_dir = out_dir, .draft = draft };
  const struct frc_envbuild_limits *lim = in->limits;
  cleanup_close int out_fd = -1;
  int rc = -1;

  if (in->lockfile == NULL || (in->nvars > 0 && (!in->var_names || !in->var_values))
      || (in->npkgs > 0 && in->pkgs == NULL)
      || (in->mode != FRC_ENVBUILD_RUN && in->mode != FRC_ENVBUILD_DEV) || (draft && in->draft))
    return frc_error(err, "building an environment: incomplete input (a bug in flox-runc)");
  b.max_depth = lim && lim->max_depth ? lim->max_depth : FRC_ENVBUILD_MAX_DEPTH;
  b.max_entries = lim && lim->max_entries ? lim->max_entries : FRC_ENVBUILD_MAX_ENTRIES;
  b.max_dir_entries
      = lim && lim->max_dir_entries ? lim->max_dir_entries : FRC_ENVBUILD_MAX_DIR_ENTRIES;
  {
    const char *root = in->store_root && *in->store_root ? in->store_root : "/";
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
      n--;
    b.store_phys = n == 1 && root[0] == '/' ? xstrdup(STORE_DIR)
                                            : xasprintf("%.*s%s", (int) n, root, STORE_DIR);
  }
  b.store_fd = open(b.store_phys, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (b.store_fd < 0)
    {
      int e = errno;
      cleanup_free char *m = msg_str(b.store_phys);
      frc_error_errno(err, e, "cannot open the Nix store `%s`", m);
      goto out;
    }
  out_fd = open(out_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (out_fd < 0)
    {
      int e = errno;
      cleanup_free char *m = msg_str(out_dir);
      frc_error_errno(err, e, "cannot open the directory `%s` to build the environment in",
                      m);
      goto out;
    }
  /* The pool only saves disk: without it (none yet, cannot be opened)
   * every symlink is the tree's own. */
  frc_linkpool_open(&b.pool, in->link_pool);
  if (build_tree(&b, err) < 0)
    goto out;
  /* A draft bets that its top-level directories are shared with a
   * package still to come (bin/ mostly is): real directories. */
  for (size_t i = 0; draft && i < b.root->nkids; i++)
    if (b.root->kids[i]->kind == K_DIR)
      b.root->kids[i]->impure = true;
  if (materialize(&b, b.root, out_fd, "", draft ? NULL : in->draft ? in->draft->root : NULL, err) < 0)
    goto out;
  if (!draft && seal(out_fd, 0555) < 0)
    {
      int e = errno;
      cleanup_free char *m = msg_str(out_dir);
      frc_error_errno(err, e, "cannot set the mode of `%s`", m);
      goto out;
    }
  if (keep)
    {
      own_files(b.root);
      *keep = steal_pointer(&b.root);
    }
  rc = 0;
out:
  if (stats)
    *stats = b.st;
  build_release(&b);
  return rc;
}

int
frc_envbuild(const struct frc_envbuild_input *in, const char *out_dir,
             struct frc_envbuild_stats *stats, frc_error_t *err)
{
  return run_build(in, out_dir, false, stats, NULL, err);
}

int
frc_envbuild_draft(const struct frc_envbuild_input *in, const char *out_dir,
                   struct frc_envbuild_draft **draft, frc_error_t *err)
{
  struct node *root = NULL;
  *draft = NULL;
  if (run_build(in, out_dir, true, NULL, &root, err) < 0)
    return -1;
  *draft = xmalloc0(sizeof(**draft));
  (*draft)->root = root;
  (*draft)->expand_all = in->expand_all;
  return 0;
}

void
frc_envbuild_draft_free(struct frc_envbuild_draft *d)
{
  if (d == NULL)
    return;
  free_node(d->root);
  free(d);
}
