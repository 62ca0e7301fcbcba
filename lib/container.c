/* container.c - create's orchestration and its undo, exec, delete and the
 * release of what a container took (container.h).
 *
 * A create calls, in order:
 *   lib/spec.c         load <bundle>/config.json
 *   lib/select.c       identity (sandbox, name) and the decision
 *   lib/annotations.c  the flox.dev/... values
 *   lib/token.c        the floxhub-token secret the spec mounts
 *   lib/hub.c          owner/name[:N] -> manifest.lock (node cache, FloxHub)
 *   lib/lockfile.c     the packages for this node's system
 *   lib/environment.c  realise (lib/store.c) and build (lib/envbuild.c) once
 *   lib/store.c        the container's GC root on the environment's packages
 *   lib/mounts.c       the environment's view of /nix; the private overlay of
 *                      nix-mutable containers
 *   lib/bindhook.c     the closure's binds as a createContainer hook (from
 *                      closure_hook_min_paths paths, with the tree's,
 *                      FLOX_ENV_CACHE's and the CA bundle's; never at a
 *                      restore)
 *   lib/viewpin.c      the view's binds made once per boot, which the hook
 *                      clones whole
 *   lib/criu.c         CRIU's view of the hook's binds (checkpoint); the
 *                      generation a restored checkpoint ran
 *   lib/envcache.c     FLOX_ENV_CACHE
 *   lib/activate.c     the process inside the environment
 *   lib/record.c       the per-container record for exec and delete
 *
 * A passthrough container's bundle is never written.  Any failure before the
 * spec is saved leaves config.json exactly as the engine wrote it, and what
 * this create took (GC root, overlay, FLOX_ENV_CACHE, record) is released
 * again (give_back).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "activate.h"
#include "bindhook.h"
#include "container.h"
#include "criu.h"
#include "envcache.h"
#include "environment.h"
#include "http.h"
#include "hub.h"
#include "lockfile.h"
#include "mounts.h"
#include "record.h"
#include "runtime.h"
#include "select.h"
#include "spec.h"
#include "store.h"
#include "token.h"
#include "util.h"
#include "viewpin.h"

/* ---- the environment ---- */

static void
log_prepared(const struct frc_prepare_request *req, const struct frc_prepared *out)
{
  if (req->container_id)
    frc_log(req->log, FRC_LOG_INFO, "flox-runc: container %s: %s (%s), %zu packages, from %s",
            req->container_id, out->ref, frc_mode_name(out->mode), out->npkgs,
            frc_resolve_source_name(out->resolved.source));
}

/* A cold create's nix-store, started while FloxHub answers (lib/store.h
 * frc_store_early_start): its start and its store's opening are then off
 * the critical path (docs/performance.md, "Lever: cold start at 5 MiB
 * (cold5)"); without it the realisation starts its own. */
struct early_nix
{
  struct frc_store store;
  struct frc_store_early *nix;
};

static void
start_nix_early(void *data)
{
  struct early_nix *e = data;
  frc_error_t ignored = NULL;
  if (e->nix == NULL && frc_store_early_start(&e->store, &e->nix, &ignored) < 0)
    {
      frc_log(e->store.log, FRC_LOG_DEBUG, "flox-runc: no early nix-store: %s", ignored->msg);
      frc_error_release(&ignored);
    }
}

static int
prepare(const struct frc_prepare_request *req, struct frc_prepared *out, struct early_nix *early,
        frc_error_t *err)
{
  const struct frc_envref *ref = req->ref;
  struct frc_resolve_request rreq = { 0 };
  struct frc_env_request *ereq = &out->env_request;
  long long deadline = req->deadline_ns
                           ? req->deadline_ns
                           : frc_now_ns() + req->config->deadline_seconds * 1000000000LL;

  rreq.config = req->config;
  rreq.ref = ref;
  rreq.token = req->token;
  rreq.log = req->log;
  rreq.deadline_ns = deadline;
  early->store.config = req->config;
  early->store.log = req->log;
  early->store.deadline_ns = deadline;
  rreq.on_cold_fetch = start_nix_early;
  rreq.on_cold_fetch_data = early;
  rreq.lockfile_later = true;
  if (frc_hub_resolve(&rreq, &out->resolved, err) < 0)
    return -1;
  snprintf(out->ref, sizeof(out->ref), "%s/%s:%u", ref->owner, ref->name,
           out->resolved.generation);
  ereq->config = req->config;
  ereq->log = req->log;
  ereq->deadline_ns = deadline;
  ereq->name = ref->name;
  ereq->mode = req->mode;
  ereq->lockfile_id = out->resolved.lockfile_id[0] ? out->resolved.lockfile_id : NULL;
  /* the text only when the key is not remembered for this copy of it */
  if (ereq->lockfile_id == NULL && frc_resolved_lockfile(&out->resolved, err) < 0)
    return frc_error_wrap(err, "environment %s", out->ref);
  ereq->lockfile = out->resolved.lockfile;
  ereq->lockfile_len = out->resolved.lockfile_len;

  /* Warm: the environment's record summarises the lockfile. */
  switch (frc_environment_find(ereq, req->has_mode, &out->env, &out->lock, &out->npkgs, err))
    {
    case -1:
      return frc_error_wrap(err, "environment %s", out->ref);
    case 1:
      out->mode = ereq->mode = frc_lock_pick_mode(&out->lock, req->has_mode, req->mode);
      log_prepared(req, out);
      return 0;
    default:
      break;
    }

  if (frc_resolved_lockfile(&out->resolved, err) < 0)
    return frc_error_wrap(err, "environment %s", out->ref);
  ereq->lockfile = out->resolved.lockfile;
  ereq->lockfile_len = out->resolved.lockfile_len;
  if (frc_lockfile_parse(out->resolved.lockfile, out->resolved.lockfile_len, frc_nix_system(),
                         &out->lock, err)
      < 0)
    return frc_error_wrap(err, "environment %s/%s generation %u", ref->owner, ref->name,
                          out->resolved.generation);
  out->mode = ereq->mode = frc_lock_pick_mode(&out->lock, req->has_mode, req->mode);
  out->npkgs = out->lock.npkgs;
  log_prepared(req, out);
  ereq->lock = &out->lock;
  ereq->early = &early->nix;
  if (frc_environment_materialise(ereq, &out->env, err) < 0)
    return frc_error_wrap(err, "environment %s", out->ref);
  return 0;
}

int
frc_environment_prepare(const struct frc_prepare_request *req, struct frc_prepared *out,
                        frc_error_t *err)
{
  struct early_nix early = { .nix = NULL };
  int rc = prepare(req, out, &early, err);

  out->env_request.early = NULL;
  if (early.nix) /* not taken: warm after all, or failed */
    {
      frc_log(req->log, FRC_LOG_DEBUG, "flox-runc: the nix-store started beside the fetch is not needed: killed");
      frc_store_early_abort(early.nix);
    }
  return rc;
}

void
frc_prepared_release(struct frc_prepared *p)
{
  frc_environment_release(&p->env);
  frc_lockfile_release(&p->lock);
  frc_resolved_release(&p->resolved);
}

/* ---- create ---- */

/* What a failed create must give back. */
struct taken
{
  const struct frc_config *config;
  char *gcroot; /* containers/<key> */
  char *overlay_dir;
  char *env_cache_key; /* a per-container FLOX_ENV_CACHE this create made */
  bool committed;
};

static void
give_back(struct taken *t)
{
  frc_error_t ignored = NULL;
  if (!t->committed)
    {
      if (t->overlay_dir)
        frc_overlay_remove(t->overlay_dir, &ignored);
      frc_error_release(&ignored);
      if (t->gcroot)
        frc_gcroot_release(t->config, "containers", t->gcroot, &ignored);
      frc_error_release(&ignored);
      if (t->env_cache_key)
        frc_env_cache_release_container(t->config, t->env_cache_key, &ignored);
      frc_error_release(&ignored);
    }
  free(t->env_cache_key);
  free(t->gcroot);
  free(t->overlay_dir);
}

/* Whether rel is a directory in the image, resolved inside the rootfs as
 * the container will (an image symlink never leads onto the node). */
static bool
is_dir(int rootfs_fd, const char *rel)
{
  struct stat st;
  return rootfs_fd >= 0 && frc_stat_in_root(rootfs_fd, rel, true, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The closure's binds as flox-runc's createContainer hook (lib/bindhook.h)
 * when this binary can be named for the runtime to run, the image's /nix
 * is not a symlink (the hook follows none; the runtime resolves one inside
 * the rootfs), the pod has no user namespace and the hook's argv fits
 * execve (frc_bindhook_usable), and the closure has at least min_paths
 * paths (closure_hook_min_paths): running a hook costs runc about a ms of
 * its own, which the binds it takes over (the closure's, the tree's,
 * FLOX_ENV_CACHE's, the CA bundle's) pay back from a few paths
 * (docs/performance.md, "Lever: the hook makes the other binds too"); else
 * one spec mount per path. */
static bool
closure_by_hook(struct frc_spec *spec, const struct frc_config *cfg, const struct frc_logger *log,
                int rootfs_fd, const char *nix_source, bool mutable_nix,
                const struct frc_environment *env)
{
  const char *prefix = cfg->store_prefix, *view = env->view, *tree = env->path;
  char *const *closure = env->closure;
  long min_paths = cfg->closure_hook_min_paths;
  cleanup_free char *view_store = NULL, *pin = NULL, *pin_node = NULL;
  const char *root = frc_json_get_string(frc_json_get(spec->doc.root, "root"), "path");
  char exe[PATH_MAX];
  ssize_t n;
  size_t count = 0;
  struct stat st;
  struct rlimit stack;
  struct frc_logger hook_log = { 0 };
  cleanup_free char *log_abs = NULL;

  for (char *const *p = closure; p && *p; p++)
    count++;
  if (count == 0 || count < (size_t) min_paths || rootfs_fd < 0 || root == NULL
      || root[0] == '\0' || view == NULL)
    return false;
  /* The runtime runs the hook in the rootfs (runc's cwd there): a relative
   * --log would name a file of the image's. */
  if (log && log->path && log->path[0] == '/')
    hook_log = *log;
  else if (log && log->path && getcwd(exe, sizeof(exe)))
    {
      hook_log = *log;
      hook_log.path = log_abs = xasprintf("%s/%s", exe, log->path);
    }
  if (frc_stat_in_root(rootfs_fd, "nix", false, &st) == 0 && S_ISLNK(st.st_mode))
    return false;
  n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0 || exe[0] != '/')
    return false;
  exe[n] = '\0';
  if (access(exe, X_OK) < 0) /* "... (deleted)": replaced since it started */
    return false;
  /* the static hook beside it, when installed (cmd/flox-runc-hook) */
  frc_bindhook_program(exe, sizeof(exe));
  if (getrlimit(RLIMIT_STACK, &stack) < 0)
    return false;
  /* the closure by the view's store directory (each mount point there),
   * then the environment's tree (one bind more in the hook rather than the
   * runtime's bind and remount) */
  view_store = xasprintf("%s/store", view);
  char ino[24];
  unsigned long long ns_ino = 0;
  char *paths[] = { (char *) FRC_BINDHOOK_VIEW_PIN, NULL, ino, (char *) FRC_BINDHOOK_VIEW_STORE,
                    view_store, (char *) tree, NULL };
  char **args = paths + 3;
  /* (the pin's two arguments fit in FRC_BINDHOOK_BINDS_RESERVE) */
  if (!frc_bindhook_usable(spec, exe, &hook_log, root, nix_source, prefix, args,
                           stack.rlim_cur == RLIM_INFINITY ? ~0ULL : stack.rlim_cur))
    return false;
  /* one recursive clone of the view's binds pinned once per boot
   * (lib/viewpin.h); not under a writable /nix, whose store is the
   * overlay's (Nix adds paths there) */
  if (cfg->pin_views && !mutable_nix
      && (pin_node = frc_viewpin_ensure(cfg, env->key, view, log, &ns_ino)))
    {
      /* by this process's root: the kernel copies no mount namespace's
       * file into a new namespace, the container's included; this process
       * stays alive while the runtime's init runs the hook (create execs
       * the runtime, run waits for it) */
      paths[1] = pin = xasprintf("/proc/%d/root%s", (int) getpid(), pin_node);
      snprintf(ino, sizeof(ino), "%llu", ns_ino);
      args = paths;
    }
  frc_bindhook_add(spec, exe, &hook_log, root, nix_source, prefix, args);
  return true;
}

/* The uid and gid of the container's user as the container sees them. */
static void
process_ids(struct frc_spec *spec, long long id[2])
{
  yajl_val user = frc_json_get(frc_spec_process(spec), "user");
  yajl_val u = frc_json_get(user, "uid"), g = frc_json_get(user, "gid");
  id[0] = u && u->type == yajl_t_number ? u->u.number.i : 0;
  id[1] = g && g->type == yajl_t_number ? g->u.number.i : 0;
}

static bool
valid_id(long long id)
{
  return id >= 0 && id < 0xffffffffLL;
}

/* /nix: the environment's view (or the writable overlay of it), its closure
 * paths and its tree, each bound read-only and non-recursively (nothing
 * mounted below them on the node shows), nosuid, nodev; nothing else of the
 * node's /nix.  And /tmp and /run/flox when the image lacks them. */
static int
project_mounts(struct frc_spec *spec, int rootfs_fd, const struct frc_config *cfg,
               const struct frc_logger *log, const struct frc_environment *env,
               const char *nix_source, bool mutable_nix, bool restore, bool *run_flox,
               frc_error_t *err)
{
  /* rprivate: nothing mounted below them in the container (the hook's
   * binds) propagates back to the node, whose mounts of the view and the
   * store may be shared (a systemd node's /) while the pod's rootfs
   * propagation is rshared (containerd's for a Bidirectional volume) */
  static const char *const ro[] = { "bind", "ro", "nosuid", "nodev", "rprivate", NULL };
  static const char *const rw[] = { "bind", "rw", "nosuid", "nodev", "rprivate", NULL };
  static const char *const tmp[] = { "nosuid", "nodev", "mode=1777", NULL };
  const char *prefix = cfg->store_prefix;
  cleanup_free char *store_nix = xasprintf("%s/nix", prefix);
  const char *const ours[] = { store_nix, cfg->state_dir, NULL };

  /* A bundle flox-runc edited before (a person's second `run` of it). */
  frc_spec_remove_mounts_below(spec, "/nix", ours);
  if (frc_spec_has_mount(spec, "/nix"))
    return frc_error(err, "the container already mounts something at /nix: remove that volume, "
                          "flox-runc mounts the node's Nix store there");
  frc_spec_add_mount(spec, "/nix", "bind", nix_source, mutable_nix ? rw : ro);
  frc_bindhook_remove(spec);
  frc_criu_unannotate(spec, cfg);
  frc_criu_screen(spec, cfg, log);
  frc_bindhook_screen(spec, log);
  /* A restore binds by spec mounts (lib/criu.h); so does a pod with a CRIU
   * configuration of its own (allow_criu_config_annotation), which the hook's
   * would replace. */
  if (!restore && !frc_criu_annotation_foreign(spec, cfg)
      && closure_by_hook(spec, cfg, log, rootfs_fd, nix_source, mutable_nix, env))
    frc_criu_annotate(spec, cfg, env->key);
  else
    {
      cleanup_free char *tree = xasprintf("%s%s", prefix, env->path);
      for (char **p = env->closure; p && *p; p++)
        {
          cleanup_free char *src = xasprintf("%s%s", prefix, *p);
          frc_spec_add_mount(spec, *p, "bind", src, ro);
        }
      frc_spec_add_mount(spec, env->path, "bind", tree, ro);
    }
  if (!frc_spec_has_mount(spec, "/tmp") && !is_dir(rootfs_fd, "tmp"))
    frc_spec_add_mount(spec, "/tmp", "tmpfs", "tmpfs", tmp);
  *run_flox = false;
  if (!frc_spec_has_mount(spec, "/run/flox") && !frc_spec_has_mount(spec, "/run")
      && !is_dir(rootfs_fd, "run/flox"))
    {
      /* owned by the container's user (as the container sees it: runc
       * mounts it in the container's user namespace), who writes the
       * first activation's record there (FRC_ACTIVATION_RECORD) */
      long long id[2];
      cleanup_free char *uo = NULL, *go = NULL;
      process_ids(spec, id);
      uo = xasprintf("uid=%lld", valid_id(id[0]) ? id[0] : 0);
      go = xasprintf("gid=%lld", valid_id(id[1]) ? id[1] : 0);
      const char *const run[] = { "nosuid", "nodev", "mode=755", uo, go, NULL };
      frc_spec_add_mount(spec, "/run/flox", "tmpfs", "tmpfs", run);
      *run_flox = true;
    }
  return 0;
}

/* The node's uid/gid of the container's user (linux.uidMappings applied). */
static void
host_ids(struct frc_spec *spec, uid_t *uid, gid_t *gid)
{
  yajl_val linux_ = frc_json_get(spec->doc.root, "linux");
  long long id[2];
  static const char *const maps[2] = { "uidMappings", "gidMappings" };
  process_ids(spec, id);
  for (int k = 0; k < 2; k++)
    {
      yajl_val m = frc_json_get(linux_, maps[k]);
      for (size_t i = 0; m && m->type == yajl_t_array && i < m->u.array.len; i++)
        {
          yajl_val c = frc_json_get(m->u.array.values[i], "containerID");
          yajl_val h = frc_json_get(m->u.array.values[i], "hostID");
          yajl_val s = frc_json_get(m->u.array.values[i], "size");
          if (c && h && s && c->type == yajl_t_number && h->type == yajl_t_number
              && s->type == yajl_t_number && id[k] >= c->u.number.i
              && id[k] < c->u.number.i + s->u.number.i)
            {
              id[k] = h->u.number.i + (id[k] - c->u.number.i);
              break;
            }
        }
    }
  *uid = valid_id(id[0]) ? (uid_t) id[0] : 0;
  *gid = valid_id(id[1]) ? (gid_t) id[1] : 0;
}

/* The node's CA bundle: the config's, else where Debian, Fedora and Alpine
 * keep theirs. */
static const char *
node_ca_bundle(const struct frc_config *cfg)
{
  static const char *const usual[] = { "/etc/ssl/certs/ca-certificates.crt",
                                       "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem",
                                       NULL };
  if (cfg->container_ca_bundle)
    return access(cfg->container_ca_bundle, R_OK) == 0 ? cfg->container_ca_bundle : NULL;
  for (const char *const *p = usual; *p; p++)
    if (access(*p, R_OK) == 0)
      return *p;
  return NULL;
}

/* A bundle flox-runc edited before (a second `run` of it, under another id)
 * has an earlier container's FLOX_ENV_CACHE mount: ours, replaced. */
static void
remove_own_cache_mount(struct frc_spec *spec, const struct frc_config *cfg)
{
  yajl_val mounts = frc_json_get(spec->doc.root, "mounts");
  cleanup_free char *own = xasprintf("%s/env-cache/", cfg->state_dir);
  cleanup_free char *source = NULL;
  for (size_t i = 0; mounts && mounts->type == yajl_t_array && i < mounts->u.array.len; i++)
    {
      const char *d = frc_json_get_string(mounts->u.array.values[i], "destination");
      const char *src = frc_json_get_string(mounts->u.array.values[i], "source");
      if (d && src && strcmp(d, FRC_ENV_CACHE_DIR) == 0 && str_has_prefix(src, own))
        source = xstrdup(src);
    }
  if (source)
    frc_spec_remove_mount(spec, FRC_ENV_CACHE_DIR, source);
}

/* FLOX_ENV_CACHE (lib/envcache.c) and, when neither the process nor the
 * environment has a CA bundle, the node's, both bind-mounted under
 * /run/flox (after project_mounts' /run/flox tmpfs). */
/* Whether flox-runc's hook can make the bind at dest (absolute, under
 * /run/flox) as the runtime would: nothing on the way in the image is a
 * symlink (the runtime resolves one inside the rootfs, the hook follows
 * none and would fail), and what is there has the source's type. */
static bool
hook_can_bind(int rootfs_fd, const char *dest, bool is_dir)
{
  cleanup_free char *rel = xstrdup(dest + 1);
  struct stat st;

  if (rootfs_fd < 0)
    return false;
  for (char *slash = rel;; slash++)
    {
      bool last;
      slash = strchr(slash, '/');
      last = slash == NULL;
      if (slash)
        *slash = '\0';
      if (frc_stat_in_root(rootfs_fd, rel, false, &st) < 0)
        return errno == ENOENT; /* made by the runtime's tmpfs or the hook */
      if (S_ISLNK(st.st_mode) || (!last && !S_ISDIR(st.st_mode))
          || (last && S_ISDIR(st.st_mode) != is_dir))
        return false;
      if (last)
        return true;
      *slash = '/';
    }
}

/* Whether the spec's last mount at /run is a writable tmpfs (ctr's,
 * Docker's and Podman's default specs have one; CRI's has none). */
static bool
run_is_spec_tmpfs(struct frc_spec *spec)
{
  yajl_val mounts = frc_json_get(spec->doc.root, "mounts");
  bool tmpfs = false;

  for (size_t i = 0; mounts && mounts->type == yajl_t_array && i < mounts->u.array.len; i++)
    {
      yajl_val m = mounts->u.array.values[i];
      const char *d = frc_json_get_string(m, "destination");
      const char *type = frc_json_get_string(m, "type");
      yajl_val opts = frc_json_get(m, "options");

      if (d == NULL || strcmp(d, "/run") != 0)
        continue;
      tmpfs = type && strcmp(type, "tmpfs") == 0;
      for (size_t k = 0; tmpfs && opts && opts->type == yajl_t_array && k < opts->u.array.len; k++)
        if (YAJL_IS_STRING(opts->u.array.values[k])
            && strcmp(opts->u.array.values[k]->u.string, "ro") == 0)
          tmpfs = false;
    }
  return tmpfs;
}

/* A bind of activation_mounts: by flox-runc's hook when the spec has it and
 * it can (one runtime mount and remount fewer), else a spec mount.  Only
 * into a mount of the spec at /run/flox (project_mounts' tmpfs when the
 * image lacks run/flox) or a writable tmpfs of the spec at /run: crun 1.8.1
 * makes a read-only root read-only before the hooks run, so the hook could
 * not make a mount point in the image's own run/flox (e2e 5 through crun: a
 * second run of a bundle whose rootfs kept the run/flox the first one
 * made). */
static void
activation_bind(struct frc_spec *spec, int rootfs_fd, const char *dest, const char *source,
                bool ro)
{
  static const char *const rw_opts[] = { "bind", "rw", "nosuid", "nodev", NULL };
  static const char *const ro_opts[] = { "bind", "ro", "nosuid", "nodev", NULL };
  struct stat st;

  if ((frc_spec_has_mount(spec, "/run/flox") || run_is_spec_tmpfs(spec)) && stat(source, &st) == 0
      && hook_can_bind(rootfs_fd, dest, S_ISDIR(st.st_mode))
      && frc_bindhook_add_bind(spec, source, dest, ro))
    return;
  frc_spec_add_mount(spec, dest, "bind", source, ro ? ro_opts : rw_opts);
}

static int
activation_mounts(const struct frc_container_call *c, struct frc_spec *spec, int rootfs_fd,
                  const struct frc_decision *d, enum frc_mode mode,
                  const struct frc_environment *env, struct taken *taken, struct frc_record *rec,
                  frc_error_t *err)
{
  struct frc_env_cache_request r = { 0 };
  const char *ca, *user_ca;

  r.config = c->config;
  r.sandbox_id = d->id.sandbox_id;
  r.runtime_root = c->root ? c->root : "";
  r.container_key = taken->gcroot;
  r.owner = d->ann.env.owner;
  r.name = d->ann.env.name;
  host_ids(spec, &r.uid, &r.gid);
  if (r.sandbox_id == NULL)
    taken->env_cache_key = xstrdup(taken->gcroot);
  if (frc_env_cache_prepare(&r, &rec->env_cache_dir, err) < 0)
    return -1;
  rec->env_cache_per_container = r.sandbox_id == NULL;
  rec->env_cache = xstrdup(FRC_ENV_CACHE_DIR);
  if (mode == FRC_MODE_DEV && env->features.pip)
    {
      /* profile.d.functions:47-54 writes it at every activation */
      static const char ini[] = "  [global]\n  require-virtualenv = true\n";
      if (frc_env_cache_write(rec->env_cache_dir, "pip.ini", ini, sizeof(ini) - 1, 0644, r.uid, r.gid, err)
          < 0)
        return frc_error_wrap(err, "cannot write pip.ini into FLOX_ENV_CACHE");
    }
  remove_own_cache_mount(spec, c->config);
  if (frc_spec_has_mount(spec, FRC_ENV_CACHE_DIR))
    return frc_error(err, "the container already mounts something at " FRC_ENV_CACHE_DIR
                          ": remove that volume, flox-runc mounts FLOX_ENV_CACHE there");
  activation_bind(spec, rootfs_fd, FRC_ENV_CACHE_DIR, rec->env_cache_dir, false);

  ca = node_ca_bundle(c->config);
  if (ca)
    frc_spec_remove_mount(spec, FRC_NODE_CA_BUNDLE, ca);
  /* (an SSL_CERT_FILE naming ours: a bundle edited before, whose mount was
   * just removed; a restore of it must have the same mounts) */
  user_ca = frc_process_getenv(frc_spec_process(spec), "SSL_CERT_FILE");
  if (user_ca && strcmp(user_ca, FRC_NODE_CA_BUNDLE) == 0)
    user_ca = NULL;
  if (ca && !env->features.ca_bundle && user_ca == NULL
      && !frc_spec_has_mount(spec, FRC_NODE_CA_BUNDLE))
    {
      activation_bind(spec, rootfs_fd, FRC_NODE_CA_BUNDLE, ca, true);
      rec->ca_bundle = xstrdup(FRC_NODE_CA_BUNDLE);
    }
  return 0;
}

/* What activation_mounts allocated in create_flox's record (the rest of
 * it borrows). */
static void
record_fields_release(struct frc_record *r)
{
  free(r->env_cache);
  free(r->env_cache_dir);
  free(r->ca_bundle);
}

static int
create_flox(const struct frc_container_call *c, struct frc_spec *spec, const struct frc_decision *d,
            frc_error_t *err)
{
  const struct frc_config *cfg = c->config;
  const char *root = c->root ? c->root : "";
  cleanup_token char *token = NULL;
  cleanup_prepared struct frc_prepared p = { 0 };
  struct taken taken __attribute__((cleanup(give_back))) = { .config = cfg };
  struct frc_prepare_request preq = { 0 };
  struct frc_envref ref;
  struct frc_activation act = { 0 };
  struct frc_record rec __attribute__((cleanup(record_fields_release))) = { 0 };
  cleanup_free char *rootfs = NULL;
  cleanup_free char *nix_source = NULL;
  cleanup_free char *merged = NULL;
  cleanup_close int rootfs_fd = -1;
  bool run_flox = false;

  if (frc_record_key(root, c->id, &taken.gcroot, err) < 0)
    return -1;
  if (frc_spec_rootfs(spec, &rootfs, err) < 0)
    return -1;

  /* Credentials: the pod's floxhub-token secret, checked before any request. */
  if (frc_token_from_spec(spec, &token, err) < 0)
    return -1;
  if (token && frc_token_check(token, (long long) time(NULL), err) < 0)
    return -1;

  /* A restore runs the generation its checkpoint ran (lib/criu.h). */
  ref = d->ann.env;
  if (c->restore_image)
    {
      bool found = false;
      if (frc_criu_image_read(c->restore_image, &d->ann.env, &ref.generation, &found, err) < 0)
        return -1;
      if (!found)
        ref.generation = d->ann.env.generation;
    }

  preq.config = cfg;
  preq.log = c->log;
  preq.ref = &ref;
  preq.token = token;
  preq.has_mode = d->ann.has_mode;
  preq.mode = d->ann.mode;
  preq.container_id = c->id;
  if (frc_environment_prepare(&preq, &p, err) < 0)
    return -1;

  /* The container's own root, released at delete: one link to the
   * environment's root, which `flox-runc gc` keeps while it is there. */
  if (frc_gcroot_link(cfg, taken.gcroot, p.env.key, err) < 0)
    return -1;

  if (d->ann.nix_mutable)
    {
      cleanup_free char *nix_db = NULL;
      if (frc_environment_nix_db(&p.env_request, &p.env, &nix_db, err) < 0
          || frc_overlay_create(cfg, taken.gcroot, p.env.view, nix_db, &taken.overlay_dir, &merged,
                                err)
                 < 0)
        return -1;
      nix_source = xstrdup(merged);
    }
  else
    nix_source = xstrdup(p.env.view);

  /* the image's rootfs, opened once for both (-1 when it cannot be: every
   * check on it then answers as for a missing entry, and no hook is used) */
  rootfs_fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (project_mounts(spec, rootfs_fd, cfg, c->log, &p.env, nix_source, d->ann.nix_mutable,
                     c->restore_image != NULL, &run_flox, err)
          < 0
      || activation_mounts(c, spec, rootfs_fd, d, p.mode, &p.env, &taken, &rec, err) < 0)
    return -1;
  act.env_path = p.env.path;
  act.store_prefix = cfg->store_prefix;
  act.description = p.ref;
  act.owner = d->ann.env.owner;
  act.name = d->ann.env.name;
  act.generation = ref.generation;
  act.floxhub_url = cfg->floxhub_url;
  act.mode = p.mode;
  act.var_names = p.lock.var_names;
  act.var_values = p.lock.var_values;
  act.nvars = p.lock.nvars;
  act.has_hook = p.env.has_hook;
  act.bash = p.env.bash;
  act.features = &p.env.features;
  act.env_cache = rec.env_cache;
  act.ca_bundle = rec.ca_bundle;
  act.disable_metrics = d->ann.disable_metrics;
  act.rootfs = rootfs;
  act.record = run_flox;
  if (frc_activate_process(&act, frc_spec_process(spec), err) < 0)
    return -1;

  rec.id = (char *) c->id;
  rec.runtime_root = (char *) root;
  rec.bundle = spec->bundle;
  rec.reference = p.ref;
  rec.env_key = p.env.key;
  rec.env_path = p.env.path;
  rec.mode = p.mode;
  rec.skip_exec = frc_name_list_contains(d->ann.skip_containers_exec, d->id.name);
  rec.disable_metrics = d->ann.disable_metrics;
  rec.has_hook = p.env.has_hook;
  rec.bash = p.env.bash;
  rec.owner = (char *) d->ann.env.owner;
  rec.name = (char *) d->ann.env.name;
  rec.generation = ref.generation;
  rec.features = p.env.features;
  rec.var_names = p.lock.var_names;
  rec.var_values = p.lock.var_values;
  rec.nvars = p.lock.nvars;
  rec.activation_record = run_flox;
  rec.overlay = taken.overlay_dir;
  rec.gcroot = taken.gcroot;
  if (frc_record_save(cfg, &rec, err) < 0)
    return -1;
  if (frc_spec_save(spec, err) < 0)
    {
      frc_error_t ignored = NULL;
      frc_record_remove(cfg, &rec, &ignored);
      frc_error_release(&ignored);
      return -1;
    }
  taken.committed = true;
  return 0;
}

/* A record for this (root, id) already exists: 1 when the runtime still has
 * that container (a second create of a live id), 0 when there is none or it
 * is gone (released here: a crashed node, a lost delete), -1 on error,
 * including when the runtime cannot tell (its root stays). */
static int
check_id_reuse(const struct frc_container_call *c, frc_error_t *err)
{
  cleanup_record struct frc_record rec = { 0 };
  cleanup_runtime struct frc_runtime rt = { 0 };
  bool found = false;
  int status;

  if (frc_record_load(c->config, c->root ? c->root : "", c->id, &rec, &found, err) < 0)
    return -1;
  if (!found)
    return 0;
  if (frc_runtime_locate(c->config->runtime, &rt, err) < 0)
    return -1;
  switch (frc_container_presence(&rt, c->root, c->id, &status))
    {
    case FRC_CONTAINER_LIVE:
      return 1;
    case FRC_CONTAINER_GONE:
      return frc_container_release(c->config, c->log, &rec, err) < 0 ? -1 : 0;
    default:
      if (status == FRC_RUNTIME_TIMED_OUT)
        return frc_error(err,
                         "container %s: a record of it exists and `%s state %s` did not answer "
                         "within %d s (killed), so flox-runc cannot tell whether it still runs: "
                         "check the runtime (a hung runtime or its state directory), then delete "
                         "the container or retry",
                         c->id, rt.path, c->id, FRC_STATE_TIMEOUT_SECONDS);
      return frc_error(err,
                       "container %s: a record of it exists and `%s state %s` exited %d, so "
                       "flox-runc cannot tell whether it still runs: check the runtime, then "
                       "delete it or retry",
                       c->id, rt.path, c->id, status);
    }
}

/* Messages name the container as the user knows it: its Kubernetes name
 * when the engine gave one (the 64-hex id means nothing in kubectl
 * describe), else the id. */
static int
wrap_container(frc_error_t *err, const struct frc_decision *d, const char *id)
{
  if (d->id.name)
    return frc_error_wrap(err, "container \"%s\"", d->id.name);
  return frc_error_wrap(err, "container %s", id);
}

int
frc_container_create(const struct frc_container_call *c, const char *bundle, bool *flox,
                     frc_error_t *err)
{
  cleanup_spec struct frc_spec spec = { 0 };
  cleanup_decision struct frc_decision d = { 0 };

  *flox = false;
  if (frc_spec_load(&spec, bundle, err) < 0)
    return -1;
  if (frc_decide(frc_json_get(spec.doc.root, "annotations"), c->config, &d, err) < 0)
    return wrap_container(err, &d, c->id);

  if (d.action == FRC_ACTION_PASSTHROUGH)
    {
      frc_log(c->log, FRC_LOG_DEBUG, "flox-runc: container %s passes through: %s", c->id,
              d.reason);
      return 0;
    }
  switch (check_id_reuse(c, err))
    {
    case -1:
      return -1;
    case 1:
      /* A live container has this id: runc refuses it with its own
       * message; nothing of the live one is touched. */
      return 0;
    default:
      break;
    }
  if (create_flox(c, &spec, &d, err) < 0)
    return wrap_container(err, &d, c->id);
  *flox = true;
  return 0;
}

/* ---- exec ---- */

int
frc_container_exec(const struct frc_container_call *c, const char *process, bool *flox,
                   frc_error_t *err)
{
  cleanup_record struct frc_record rec = { 0 };
  struct frc_json_doc doc __attribute__((cleanup(frc_json_doc_release))) = { 0 };
  struct frc_activation act;
  bool found = false;

  *flox = false;
  if (frc_record_load(c->config, c->root, c->id, &rec, &found, err) < 0)
    return -1;
  if (!found || rec.skip_exec || process == NULL)
    return 0;

  if (frc_process_file_load(&doc, process, err) < 0)
    return -1;
  frc_record_activation(&rec, &act);
  act.store_prefix = c->config->store_prefix;
  act.floxhub_url = c->config->floxhub_url;
  act.attach = true;
  if (frc_activate_process(&act, doc.root, err) < 0)
    return frc_error_wrap(err, "exec into container %s", c->id);
  if (frc_json_doc_save(&doc, err) < 0)
    return -1;
  *flox = true;
  return 0;
}

/* ---- delete, run ---- */

int
frc_container_delete(const struct frc_container_call *c, char **argv, bool *ran, int *status,
                     frc_error_t *err)
{
  cleanup_record struct frc_record rec = { 0 };
  cleanup_runtime struct frc_runtime rt = { 0 };
  bool found = false;

  *ran = false;
  if (frc_record_load(c->config, c->root, c->id, &rec, &found, err) < 0)
    return -1;
  if (!found && !frc_env_cache_sandbox_exists(c->config, c->id))
    return 0;
  if (frc_runtime_locate(c->config->runtime, &rt, err) < 0)
    return -1;
  *status = frc_runtime_run(&rt, argv, false, 0, err);
  if (*status < 0)
    return -1;
  *ran = true;
  /* A delete that failed (e.g. of a running container without --force)
   * releases only when the runtime says the container is gone: a runtime
   * that cannot answer keeps everything, and gc asks again later. */
  if (*status != 0 && frc_container_presence(&rt, c->root, c->id, NULL) != FRC_CONTAINER_GONE)
    return 0;
  if (!found)
    {
      /* a pod's sandbox: its containers' FLOX_ENV_CACHE goes with it */
      if (frc_env_cache_release_sandbox(c->config, c->id, err) < 0)
        return frc_error_wrap(err, "pod sandbox %s deleted, but", c->id);
      frc_log(c->log, FRC_LOG_DEBUG, "flox-runc: pod sandbox %s: removed its FLOX_ENV_CACHE", c->id);
      return 0;
    }
  return frc_container_release(c->config, c->log, &rec, err);
}

int
frc_container_run(const struct frc_container_call *c, char **argv, int keep_fds, int *status,
                  frc_error_t *err)
{
  cleanup_runtime struct frc_runtime rt = { 0 };
  cleanup_record struct frc_record rec = { 0 };
  bool found = false;

  if (frc_runtime_locate(c->config->runtime, &rt, err) < 0)
    return -1;
  *status = frc_runtime_run(&rt, argv, false, keep_fds, err);
  if (*status < 0)
    return -1;
  if (frc_record_load(c->config, c->root ? c->root : "", c->id, &rec, &found, err) < 0
      || (found && frc_container_release(c->config, c->log, &rec, err) < 0))
    return -1;
  return 0;
}

/* ---- presence, release ---- */

enum frc_presence
frc_container_presence(const struct frc_runtime *rt, const char *root, const char *id, int *status)
{
  frc_error_t ignored = NULL;
  char *argv[6];
  int n = 0, st;
  argv[n++] = NULL;
  if (root && root[0])
    {
      argv[n++] = (char *) "--root";
      argv[n++] = (char *) root;
    }
  argv[n++] = (char *) "state";
  argv[n++] = (char *) id;
  argv[n] = NULL;
  st = frc_runtime_run_timed(rt, argv, true, 0, FRC_STATE_TIMEOUT_SECONDS * 1000000000LL, &ignored);
  frc_error_release(&ignored);
  if (status)
    *status = st;
  return st == 0 ? FRC_CONTAINER_LIVE : st == 1 ? FRC_CONTAINER_GONE : FRC_CONTAINER_UNKNOWN;
}

int
frc_container_release(const struct frc_config *config, const struct frc_logger *log,
                      const struct frc_record *rec, frc_error_t *err)
{
  if (rec->overlay && frc_overlay_remove(rec->overlay, err) < 0)
    return frc_error_wrap(err, "container %s deleted, but", rec->id);
  if (frc_gcroot_release(config, "containers", rec->gcroot, err) < 0
      || (rec->env_cache_per_container
          && frc_env_cache_release_container(config, rec->gcroot, err) < 0)
      || frc_record_remove(config, rec, err) < 0)
    return frc_error_wrap(err, "container %s deleted, but", rec->id);
  frc_log(log, FRC_LOG_DEBUG, "flox-runc: container %s: released its GC root%s", rec->id,
          rec->overlay ? " and writable /nix" : "");
  return 0;
}
