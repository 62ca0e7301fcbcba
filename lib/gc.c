#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "envcache.h"
#include "environment.h"
#include "container.h"
#include "gc.h"
#include "linkpool.h"
#include "mounts.h"
#include "record.h"
#include "store.h"
#include "util.h"
#include "viewpin.h"

/* The names in use, collected from the live records. */
struct in_use
{
  char **env_keys, **gcroots, **overlays, **env_caches;
  size_t n_env, n_roots, n_overlays, n_caches;
};

/* Records may lack an overlay: a NULL s adds nothing. */
static void
push(char ***v, size_t *n, const char *s)
{
  if (s)
    frc_strv_push(v, n, xstrdup(s));
}

static void
in_use_release(struct in_use *u)
{
  frc_strv_freep(&u->env_keys);
  frc_strv_freep(&u->gcroots);
  frc_strv_freep(&u->overlays);
  frc_strv_freep(&u->env_caches);
}

static bool
old_enough(const char *path, long seconds)
{
  struct stat st;
  return lstat(path, &st) == 0 && time(NULL) - st.st_mtime >= seconds;
}

/* The rule create and delete use (lib/container.h): only a runtime that
 * says the container is gone releases it; one that cannot tell keeps it. */
static bool
container_exists(const struct frc_gc_opts *o, const struct frc_record *r)
{
  return frc_container_presence(o->runtime, r->runtime_root, r->id, NULL) != FRC_CONTAINER_GONE;
}

static void
report(const struct frc_gc_opts *o, const char *what, const char *path)
{
  if (o->report)
    o->report(what, path, o->data);
}

/* One thing gc could not release: reported, counted, the first kept in
 * *err; gc goes on with the rest. */
static void
failed(const struct frc_gc_opts *o, struct frc_gc_stats *st, frc_error_t *first, frc_error_t *e)
{
  st->failures++;
  report(o, "cannot remove", (*e)->msg);
  if (*first == NULL)
    *first = steal_pointer(e);
  else
    frc_error_release(e);
}

typedef int (*remover_fn)(const char *path, frc_error_t *err);

/* Reports path as what, counts it, and removes it (remover, frc_rm_rf when
 * NULL) unless this is a dry run; a failure is counted and gc goes on. */
static void
remove_one(const struct frc_gc_opts *o, struct frc_gc_stats *st, frc_error_t *err, const char *what,
           const char *path, unsigned *counter, remover_fn remover)
{
  frc_error_t fe = NULL;
  report(o, what, path);
  (*counter)++;
  if (!o->dry_run && (remover ? remover : frc_rm_rf)(path, &fe) < 0)
    failed(o, st, err, &fe);
}

/* What sweep removes from a directory: every visible entry older than
 * grace seconds that in_use does not name (by name, or by full path when
 * by_path). */
struct sweep
{
  const char *dir;
  char *const *in_use;
  size_t n_in_use;
  bool by_path;
  long grace;
  const char *what;
  unsigned *counter;
  remover_fn remover;
};

static void
sweep(const struct frc_gc_opts *o, struct frc_gc_stats *st, frc_error_t *err, const struct sweep *w)
{
  cleanup_dir DIR *d = opendir(w->dir);
  size_t len = strlen(w->dir);
  const char *sep = len && w->dir[len - 1] == '/' ? "" : "/";
  struct dirent *e;

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL)
    {
      cleanup_free char *p = NULL;
      if (e->d_name[0] == '.')
        continue;
      p = xasprintf("%s%s%s", w->dir, sep, e->d_name);
      if (frc_strv_has(w->in_use, w->n_in_use, w->by_path ? p : e->d_name) || !old_enough(p, w->grace))
        continue;
      remove_one(o, st, err, w->what, p, w->counter, w->remover);
    }
}

/* name ends in ".json" and has a stem: the stem (malloc'd), else NULL. */
static char *
json_stem(const char *name)
{
  size_t len = strlen(name);
  if (name[0] == '.' || len < 6 || strcmp(name + len - 5, ".json") != 0)
    return NULL;
  return xstrndup(name, len - 5);
}

/* One container record: kept (its names marked in use) while the runtime
 * may still have the container, else released as delete would.  A damaged
 * one (a crash of the node: records are not synced, docs/design.md) names
 * nothing, and create, exec and delete read it as no record: removed once
 * past the grace period (its GC root and overlay are then orphans); one
 * that cannot be read is kept. */
static void
gc_record(const struct frc_gc_opts *o, struct in_use *u, struct frc_gc_stats *st, frc_error_t *err,
          const char *path)
{
  cleanup_record struct frc_record r = { 0 };
  frc_error_t fe = NULL;

  if (frc_record_read(path, &r, &fe) < 0)
    {
      /* damaged: read whole, but no record in it; a read that failed
       * (EIO, EMFILE, ...) says nothing of the record, which stays */
      bool damaged = fe->errno_ == 0;
      frc_error_release(&fe);
      if (damaged && old_enough(path, FRC_GC_GRACE_SECONDS))
        remove_one(o, st, err, "damaged container record", path, &st->containers, NULL);
      return;
    }
  if (!old_enough(path, FRC_GC_GRACE_SECONDS) || container_exists(o, &r))
    {
      push(&u->env_keys, &u->n_env, r.env_key);
      push(&u->gcroots, &u->n_roots, r.gcroot);
      push(&u->overlays, &u->n_overlays, r.overlay);
      push(&u->env_caches, &u->n_caches, r.env_cache_dir);
      return;
    }
  report(o, "container gone, releasing", path);
  st->containers++;
  if (!o->dry_run && frc_container_release(o->config, o->log, &r, &fe) < 0)
    failed(o, st, err, &fe);
}

/* Pass 1: container records (<state_dir>/containers/<root>/<id>.json). */
static int
gc_containers(const struct frc_gc_opts *o, struct in_use *u, struct frc_gc_stats *st, frc_error_t *err)
{
  cleanup_free char *base = xasprintf("%s/containers", o->config->state_dir);
  cleanup_dir DIR *d = opendir(base);
  struct dirent *e;

  if (d == NULL)
    return 0;
  while ((e = readdir(d)) != NULL)
    {
      cleanup_free char *sub = NULL;
      cleanup_dir DIR *sd = NULL;
      struct dirent *f;
      if (e->d_name[0] == '.')
        continue;
      sub = xasprintf("%s/%s", base, e->d_name);
      if ((sd = opendir(sub)) == NULL)
        continue;
      while ((f = readdir(sd)) != NULL)
        {
          cleanup_free char *id = json_stem(f->d_name);
          cleanup_free char *path = id ? xasprintf("%s/%s", sub, f->d_name) : NULL;
          if (path)
            gc_record(o, u, st, err, path);
        }
    }
  return 0;
}

/* Pass 2: overlays and container roots no record names. */
static int
gc_orphans(const struct frc_gc_opts *o, struct in_use *u, struct frc_gc_stats *st, frc_error_t *err)
{
  cleanup_free char *ovl = xasprintf("%s/overlays", o->config->state_dir);
  cleanup_free char *roots = frc_gcroot_dir(o->config, "containers", "");
  const struct sweep overlays = { ovl, u->overlays, u->n_overlays, true, FRC_GC_GRACE_SECONDS,
                                  "orphaned writable /nix", &st->overlays, frc_overlay_remove };
  const struct sweep container_roots = { roots, u->gcroots, u->n_roots, false, FRC_GC_GRACE_SECONDS,
                                         "orphaned container GC root", &st->container_roots, NULL };
  sweep(o, st, err, &overlays);
  sweep(o, st, err, &container_roots);
  return 0;
}

/* Removes an unused environment whose lock gc holds: its record first (a
 * create that then takes the lock builds it anew), then its tree, view and
 * root; the record gone, a later gc cannot find what is left, so each part
 * is tried. */
static void
remove_environment(const struct frc_gc_opts *o, struct frc_gc_stats *st, frc_error_t *err,
                   const char *key, const char *record)
{
  cleanup_free char *logical = xasprintf("%s/%s", FRC_ENVS_DIR, key);
  cleanup_free char *tree = frc_store_physical(o->config, logical);
  frc_error_t fe = NULL;

  if (unlink(record) < 0 && errno != ENOENT)
    {
      frc_error_errno(&fe, errno, "cannot remove `%s`", record);
      failed(o, st, err, &fe);
      return;
    }
  if (frc_rm_rf(tree, &fe) < 0)
    failed(o, st, err, &fe);
  if (frc_view_remove(o->config, key, &fe) < 0)
    failed(o, st, err, &fe);
  if (frc_gcroot_release(o->config, "envs", key, &fe) < 0)
    failed(o, st, err, &fe);
}

/* The pool's symlinks no tree uses any more (lib/linkpool.h): after the
 * trees, so that those of the environments just removed go too.  One line
 * for all of them. */
static void
gc_link_pool(const struct frc_gc_opts *o, struct frc_gc_stats *st, frc_error_t *err)
{
  cleanup_free char *pool = frc_store_physical(o->config, FRC_LINKPOOL_DIR);
  frc_error_t fe = NULL;
  size_t n = 0;
  int rc = frc_linkpool_sweep(pool, o->dry_run, &n, &fe);

  st->shared_links += (unsigned) n;
  if (n > 0)
    {
      cleanup_free char *what = xasprintf("%zu shared symlink%s no environment uses", n,
                                          n == 1 ? "" : "s");
      report(o, what, pool);
    }
  if (rc < 0)
    failed(o, st, err, &fe);
}

/* Pass 3: environments no container record or container root uses,
 * unused for max_age; then leftovers of interrupted builds. */
static int
gc_environments(const struct frc_gc_opts *o, struct in_use *u, struct frc_gc_stats *st, frc_error_t *err)
{
  cleanup_free char *envs = xasprintf("%s/envs", o->config->state_dir);
  cleanup_free char *tmp = frc_store_physical(o->config, "/nix/var/flox-runc/tmp");
  cleanup_free char *roots = frc_gcroot_dir(o->config, "containers", "");
  const struct sweep leftovers = { tmp, NULL, 0, false, 3600, "leftover of an interrupted build",
                                   &st->leftovers, NULL };
  cleanup_dir DIR *rd = opendir(roots);
  cleanup_dir DIR *d = NULL;
  struct dirent *e;

  /* An environment a container root refers to stays, record or not: its
   * root is what pins the container's packages. */
  while (rd && (e = readdir(rd)) != NULL)
    {
      cleanup_free char *key = e->d_name[0] == '.' ? NULL : frc_gcroot_env_of(o->config, e->d_name);
      push(&u->env_keys, &u->n_env, key);
    }
  d = opendir(envs);
  while (d && (e = readdir(d)) != NULL)
    {
      cleanup_free char *key = json_stem(e->d_name);
      cleanup_free char *p = NULL;
      cleanup_free char *lock = NULL;
      cleanup_close int lock_fd = -1;
      if (key == NULL)
        continue;
      p = xasprintf("%s/%s", envs, e->d_name);
      if (frc_strv_has(u->env_keys, u->n_env, key) || !old_enough(p, o->max_age_seconds))
        continue;
      if (o->dry_run)
        {
          report(o, "unused environment", p);
          st->environments++;
          continue;
        }
      /* A create building this key holds its lock: leave it alone.  The
       * lock is held while the environment goes and its file is unlinked
       * before it is released (frc_lock_file then retries). */
      lock = xasprintf("%s/%s.lock", envs, key);
      lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0 || !old_enough(p, o->max_age_seconds))
        continue;
      report(o, "unused environment", p);
      st->environments++;
      remove_environment(o, st, err, key, p);
      unlink(lock);
    }
  sweep(o, st, err, &leftovers);
  gc_link_pool(o, st, err);
  {
    /* the keys remembered per lockfile copy (lib/environment.h): written
     * once, so aged by their first use; one gone is hashed again */
    cleanup_free char *memos = xasprintf("%s/" FRC_KEY_MEMO_DIR, o->config->state_dir);
    const struct sweep keys = { memos, NULL, 0, false, o->max_age_seconds, "remembered environment key",
                                &st->leftovers, NULL };
    sweep(o, st, err, &keys);
  }
  return 0;
}

/* Whether a live container's FLOX_ENV_CACHE is below dir. */
static bool
cache_in_use(const struct in_use *u, const char *dir)
{
  size_t n = strlen(dir);
  for (size_t i = 0; i < u->n_caches; i++)
    if (strncmp(u->env_caches[i], dir, n) == 0 && u->env_caches[i][n] == '/')
      return true;
  return false;
}

/* Pass 4: FLOX_ENV_CACHE directories (lib/envcache.c) of pod sandboxes the
 * runtime no longer knows, and of containers no record names. */
static int
gc_env_caches(const struct frc_gc_opts *o, struct in_use *u, struct frc_gc_stats *st,
              frc_error_t *err)
{
  static const char *const kinds[] = { "sandbox", "container" };
  for (int k = 0; k < 2; k++)
    {
      cleanup_free char *base = xasprintf("%s/env-cache/%s", o->config->state_dir, kinds[k]);
      cleanup_dir DIR *d = opendir(base);
      struct dirent *e;
      if (d == NULL)
        continue;
      while ((e = readdir(d)) != NULL)
        {
          cleanup_free char *path = NULL;
          bool gone;
          if (e->d_name[0] == '.')
            continue;
          path = xasprintf("%s/%s", base, e->d_name);
          if (!old_enough(path, FRC_GC_GRACE_SECONDS))
            continue;
          if (k == 0)
            {
              cleanup_free char *root = frc_env_cache_sandbox_root(o->config, e->d_name);
              struct frc_record r = { .id = e->d_name, .runtime_root = root };
              /* CRI-O's pods (drop_infra_ctr) have no sandbox container
               * for the runtime to know: a live container of the sandbox
               * keeps it */
              gone = frc_container_id_valid(e->d_name) && !cache_in_use(u, path)
                     && !container_exists(o, &r);
            }
          else
            gone = !frc_strv_has(u->gcroots, u->n_roots, e->d_name);
          if (!gone)
            continue;
          remove_one(o, st, err,
                     k == 0 ? "FLOX_ENV_CACHE of a deleted pod sandbox"
                            : "FLOX_ENV_CACHE of a deleted container",
                     path, &st->env_caches, NULL);
        }
    }
  return 0;
}

/* ".<name>.XXXXXX" (write_file_atomic's mkostemp names) or ".<key>.<pid>"
 * (a view being built). */
static bool
temporary_name(const char *n)
{
  const char *dot = strrchr(n, '.');
  size_t len, digits = 0, alnum = 0;
  if (n[0] != '.' || dot == NULL || dot == n || dot[1] == '\0')
    return false;
  len = strlen(dot + 1);
  for (const char *p = dot + 1; *p; p++)
    {
      digits += *p >= '0' && *p <= '9';
      alnum += (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');
    }
  return (len == 6 && alnum == 6) || digits == len;
}

/* Temporary files and directories of interrupted writes and builds in dir,
 * older than the grace period. */
static void
gc_temporaries(const struct frc_gc_opts *o, const char *dir, struct frc_gc_stats *st, frc_error_t *err)
{
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *e;

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL)
    {
      cleanup_free char *p = NULL;
      if (!temporary_name(e->d_name))
        continue;
      p = xasprintf("%s/%s", dir, e->d_name);
      if (old_enough(p, FRC_GC_GRACE_SECONDS))
        remove_one(o, st, err, "leftover of an interrupted write", p, &st->leftovers, NULL);
    }
}

/* gc_temporaries in dir and its subdirectories down to depth more levels
 * (the hub cache is <hub>/<owner>/<name>/gen/<N>/). */
static void
gc_temporaries_below(const struct frc_gc_opts *o, const char *dir, int depth, struct frc_gc_stats *st,
                     frc_error_t *err)
{
  cleanup_dir DIR *d = NULL;
  struct dirent *e;

  gc_temporaries(o, dir, st, err);
  if (depth == 0 || (d = opendir(dir)) == NULL)
    return;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN))
      {
        cleanup_free char *sub = xasprintf("%s/%s", dir, e->d_name);
        struct stat sst;
        if (lstat(sub, &sst) == 0 && S_ISDIR(sst.st_mode))
          gc_temporaries_below(o, sub, depth - 1, st, err);
      }
}

/* Pins of views that are gone (lib/viewpin.h). */
struct orphan_pins
{
  const struct frc_gc_opts *o;
  struct frc_gc_stats *st;
  frc_error_t *err;
};

static int
orphan_pin(const char *pin, void *data)
{
  struct orphan_pins *p = data;
  remove_one(p->o, p->st, p->err, "pin of a removed view", pin, &p->st->leftovers,
             frc_viewpin_unmount);
  return 0;
}

static void
gc_orphan_pins(const struct frc_gc_opts *o, struct frc_gc_stats *st, frc_error_t *err)
{
  struct orphan_pins p = { o, st, err };
  frc_viewpin_each_orphan(o->config, orphan_pin, &p);
}

static void
gc_all_temporaries(const struct frc_gc_opts *o, struct frc_gc_stats *st, frc_error_t *err)
{
  static const struct
  {
    const char *dir;
    int depth;
  } dirs[] = { { "envs", 0 }, { "views", 0 }, { "containers", 1 }, { "hub", 5 }, { NULL, 0 } };

  for (size_t i = 0; dirs[i].dir; i++)
    {
      cleanup_free char *dir = xasprintf("%s/%s", o->config->state_dir, dirs[i].dir);
      gc_temporaries_below(o, dir, dirs[i].depth, st, err);
    }
}

int
frc_gc_run(const struct frc_gc_opts *o, struct frc_gc_stats *stats, frc_error_t *err)
{
  struct in_use u __attribute__((cleanup(in_use_release))) = { 0 };
  memset(stats, 0, sizeof(*stats));
  *err = NULL;
  gc_containers(o, &u, stats, err);
  gc_orphans(o, &u, stats, err);
  gc_environments(o, &u, stats, err);
  gc_env_caches(o, &u, stats, err);
  gc_all_temporaries(o, stats, err);
  gc_orphan_pins(o, stats, err);
  if (stats->failures)
    return frc_error_wrap(err, "gc could not remove %u thing%s (each is named above); the first",
                          stats->failures, stats->failures == 1 ? "" : "s");
  return 0;
}
