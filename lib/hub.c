#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dl.h"
#include "floxmeta.h"
#include "git.h"
#include "http.h"
#include "hub.h"
#include "json.h"
#include "lockfile.h"
#include "util.h"

#define MAX_ATTEMPTS 4
#define FIRST_BACKOFF_MS 200

#define FIX_PRIVATE                                                                                \
  "private environments need the floxhub-token secret mounted at /var/run/secrets/flox.dev"

/* Everything one resolution works with. */
struct ctx
{
  const struct frc_resolve_request *req;
  const struct frc_envref *ref;
  char label[FRC_OWNER_MAX + FRC_ENVNAME_MAX + 16]; /* owner/name or owner/name:N */
  char *dir; /* the environment's cache directory */
  char *auth_file; /* auth/<sha256 of the credential> */
  long long deadline_ns;
  time_t now;
  struct frc_git_remote remote;
  bool remote_open;
  unsigned requests;
};

const char *
frc_resolve_source_name(enum frc_resolve_source s)
{
  switch (s)
    {
    case FRC_FROM_CACHE: return "node cache";
    case FRC_FROM_CACHE_VERIFIED: return "node cache, verified with FloxHub";
    case FRC_FROM_HUB: return "FloxHub";
    default: return "node cache (FloxHub unreachable)";
    }
}

char *
frc_hub_repo_url(const struct frc_config *c, const char *owner)
{
  size_t n = strlen(c->floxhub_git_url);
  while (n > 0 && c->floxhub_git_url[n - 1] == '/')
    n--;
  return xasprintf("%.*s/%s/floxmeta", (int) n, c->floxhub_git_url, owner);
}

static int
hex_digest(const char *data, size_t len, char out[65], frc_error_t *err)
{
  unsigned char d[32];
  if (frc_sha256(data, len, d, err) < 0)
    return -1;
  frc_hex(d, 32, out);
  return 0;
}

/* <state_dir>/hub/<sha256(git url)[0:16]>/<owner>/<name>; the owner and name
 * were validated by lib/annotations.c, so they are safe path components. */
static int
setup_paths(struct ctx *c, frc_error_t *err)
{
  const struct frc_config *cfg = c->req->config;
  char hubkey[65], credkey[65];
  cleanup_free char *cred = NULL;

  if (hex_digest(cfg->floxhub_git_url, strlen(cfg->floxhub_git_url), hubkey, err) < 0)
    return -1;
  hubkey[16] = '\0';
  c->dir = xasprintf("%s/hub/%s/%s/%s", cfg->state_dir, hubkey, c->ref->owner, c->ref->name);
  cred = xasprintf("flox-runc credential\n%s/%s\n%s", c->ref->owner, c->ref->name,
                   c->req->token ? c->req->token : "(anonymous)");
  if (hex_digest(cred, strlen(cred), credkey, err) < 0)
    return -1;
  explicit_bzero(cred, strlen(cred));
  c->auth_file = xasprintf("%s/auth/%s", c->dir, credkey);
  if (frc_mkdir_p(c->dir, 0700, err) < 0)
    return frc_error_wrap(err, "cannot prepare the environment cache (state_dir)");
  return 0;
}

/* Single flight: one resolution per environment at a time, bounded by the
 * deadline. */
static int
lock_environment(struct ctx *c, int *fd, frc_error_t *err)
{
  cleanup_free char *path = xasprintf("%s/.lock", c->dir);
  cleanup_free char *what = xasprintf("another resolution of %s", c->label);
  return frc_lock_file(path, c->deadline_ns, what, fd, err);
}

/* Seconds since the credential was last accepted, or -1 when never. */
static long long
auth_age(struct ctx *c)
{
  struct stat st;
  if (stat(c->auth_file, &st) < 0)
    return -1;
  return (long long) c->now - (long long) st.st_mtime;
}

static void
auth_remember(struct ctx *c)
{
  frc_error_t ignored = NULL;
  cleanup_free char *dir = xasprintf("%s/auth", c->dir);
  if (frc_mkdir_p(dir, 0700, &ignored) < 0
      || write_file_atomic(c->auth_file, c->label, strlen(c->label), 0600, &ignored) < 0)
    frc_log(c->req->log, FRC_LOG_WARNING, "flox-runc: cannot record the credential check: %s",
            ignored->msg);
  frc_error_release(&ignored);
}

static void
auth_forget(struct ctx *c)
{
  unlink(c->auth_file);
}

struct live_state
{
  char commit[41];
  unsigned live;
  long long checked;
};

static bool
read_live(struct ctx *c, struct live_state *s)
{
  cleanup_free char *path = xasprintf("%s/live.json", c->dir);
  cleanup_free char *text = NULL;
  cleanup_json yajl_val v = NULL;
  frc_error_t ignored = NULL;
  const char *commit;
  yajl_val live, checked;
  size_t len;

  memset(s, 0, sizeof(*s));
  if (read_file_bounded(path, 65536, &text, &len, &ignored) < 0
      || frc_json_parse(text, len, &v, &ignored) < 0)
    {
      frc_error_release(&ignored);
      return false;
    }
  commit = frc_json_get_string(v, "commit");
  live = frc_json_get(v, "live");
  checked = frc_json_get(v, "checked");
  if (commit == NULL || strlen(commit) != 40 || live == NULL || live->type != yajl_t_number
      || checked == NULL || checked->type != yajl_t_number)
    return false;
  memcpy(s->commit, commit, 41);
  s->live = (unsigned) live->u.number.i;
  s->checked = checked->u.number.i;
  return s->live > 0;
}

static int
write_live(struct ctx *c, const struct live_state *s, frc_error_t *err)
{
  cleanup_free char *path = xasprintf("%s/live.json", c->dir);
  cleanup_free char *text = xasprintf("{\"commit\":\"%s\",\"live\":%u,\"checked\":%lld}\n",
                                      s->commit, s->live, s->checked);
  return write_file_atomic(path, text, strlen(text), 0600, err);
}

static char *
gen_path(struct ctx *c, unsigned gen)
{
  return xasprintf("%s/gen/%u/manifest.lock", c->dir, gen);
}

static bool
gen_cached(struct ctx *c, unsigned gen)
{
  cleanup_free char *p = gen_path(c, gen);
  return access(p, R_OK) == 0;
}

static int
open_remote(struct ctx *c, frc_error_t *err)
{
  struct frc_http_opts opts = {
    .ca_file = c->req->config->ca_file,
    .user = c->req->token ? "oauth" : NULL,
    .password = c->req->token,
    .deadline_ns = c->deadline_ns,
  };
  cleanup_free char *url = NULL;
  if (c->remote_open)
    return 0;
  url = frc_hub_repo_url(c->req->config, c->ref->owner);
  if (frc_git_remote_init(&c->remote, url, &opts, err) < 0)
    return -1;
  c->remote_open = true;
  return 0;
}

/* Whether a failure is worth another attempt. */
static bool
retryable(frc_error_t err)
{
  int code = frc_error_get_code(err);
  return code == FRC_ECODE_UNREACHABLE || code == FRC_ECODE_SERVER;
}

/* Whether the hub could not answer (as opposed to answering no): the
 * offline fallbacks apply. */
static bool
hub_unavailable(frc_error_t err)
{
  return retryable(err) || frc_error_get_code(err) == FRC_ECODE_DEADLINE;
}

/* Sleeps before attempt `attempt` (1-based) if the deadline allows it. */
static bool
backoff(struct ctx *c, int attempt, frc_error_t err)
{
  long long ms = (long long) FIRST_BACKOFF_MS << (attempt - 1);
  struct timespec ts = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
  if (attempt >= MAX_ATTEMPTS || frc_now_ns() + ms * 1000000LL >= c->deadline_ns)
    return false;
  frc_log(c->req->log, FRC_LOG_WARNING, "flox-runc: FloxHub request for %s failed (%s); retrying in %lld ms",
          c->label, err->msg, ms);
  nanosleep(&ts, NULL);
  return true;
}

/* The branch's commit, retried; AUTH and NOT_FOUND become the messages the
 * user sees. */
static int
ls_branch(struct ctx *c, char commit[41], frc_error_t *err)
{
  for (int attempt = 1;; attempt++)
    {
      int r;
      if (open_remote(c, err) < 0)
        return -1;
      r = frc_git_ls_ref(&c->remote, c->ref->name, commit, err);
      c->requests = frc_git_remote_requests(&c->remote);
      if (r == 0)
        return 0;
      if (!retryable(*err) || !backoff(c, attempt, *err))
        break;
      frc_error_release(err);
    }
  switch (frc_error_get_code(*err))
    {
    case FRC_ECODE_AUTH:
      auth_forget(c);
      frc_error_release(err);
      frc_error(err, "environment %s not found or not accessible: %s%s", c->label, FIX_PRIVATE,
                c->req->token ? " (FloxHub refused the token that is mounted there)" : "");
      return frc_error_code(err, FRC_ECODE_AUTH);
    case FRC_ECODE_NOT_FOUND:
      frc_error_release(err);
      frc_error(err, "environment %s/%s not found on FloxHub (%s): check the owner and name in "
                     "flox.dev/environment",
                c->ref->owner, c->ref->name, c->req->config->floxhub_url);
      return frc_error_code(err, FRC_ECODE_NOT_FOUND);
    default:
      return -1;
    }
}

static int
read_files(struct ctx *c, const char *commit, const char *const *paths, char **contents,
           size_t *lens, frc_error_t *err)
{
  for (int attempt = 1;; attempt++)
    {
      int r = frc_git_read_files(&c->remote, commit, paths, contents, lens, err);
      c->requests = frc_git_remote_requests(&c->remote);
      if (r == 0)
        return 0;
      if (!retryable(*err) || !backoff(c, attempt, *err))
        return -1;
      frc_error_release(err);
    }
}

/* Reads metadata.json of commit. */
static int
fetch_generations(struct ctx *c, const char *commit, struct frc_generations *g, frc_error_t *err)
{
  const char *paths[] = { "metadata.json", NULL };
  char *contents[1] = { NULL };
  size_t lens[1] = { 0 };
  int r;

  if (read_files(c, commit, paths, contents, lens, err) < 0)
    return frc_error_wrap(err, "cannot read the generations of %s", c->label);
  r = frc_floxmeta_parse(contents[0], lens[0], g, err);
  free(contents[0]);
  return r;
}

/* Fetches, validates and caches generation gen's manifest.lock. */
static int
fetch_generation(struct ctx *c, const char *commit, unsigned gen, frc_error_t *err)
{
  char rel[64];
  const char *paths[] = { rel, NULL };
  char *contents[1] = { NULL };
  size_t lens[1] = { 0 };
  cleanup_free char *text = NULL;
  cleanup_free char *path = gen_path(c, gen);
  cleanup_free char *dir = xasprintf("%s/gen/%u", c->dir, gen);
  struct frc_lockfile lock;
  frc_error_t perr = NULL;

  snprintf(rel, sizeof(rel), "%u/env/manifest.lock", gen);
  if (read_files(c, commit, paths, contents, lens, err) < 0)
    return frc_error_wrap(err, "cannot read generation %u of %s/%s", gen, c->ref->owner,
                          c->ref->name);
  text = contents[0];
  /* Malformed content is never cached; a lockfile without packages for this
   * system is a property of the generation and is reported by the caller. */
  if (frc_lockfile_parse(text, lens[0], frc_nix_system(), &lock, &perr) < 0
      && frc_error_get_code(perr) != FRC_ECODE_NOT_FOUND)
    {
      frc_lockfile_release(&lock);
      *err = perr;
      return frc_error_wrap(err, "generation %u of %s/%s", gen, c->ref->owner, c->ref->name);
    }
  frc_lockfile_release(&lock);
  frc_error_release(&perr);
  if (frc_mkdir_p(dir, 0700, err) < 0 || write_file_atomic(path, text, lens[0], 0600, err) < 0)
    return frc_error_wrap(err, "cannot cache %s", c->label);
  return 0;
}

static int
serve(struct ctx *c, unsigned gen, unsigned live, const char *commit, enum frc_resolve_source src,
      struct frc_resolved *out, frc_error_t *err)
{
  out->generation = gen;
  out->live = live;
  out->pinned = c->ref->generation != 0;
  out->source = src;
  out->commit = xstrdup(commit ? commit : "");
  out->lockfile_path = gen_path(c, gen);
  out->requests = c->requests;
  if (read_file_bounded(out->lockfile_path, FRC_LOCKFILE_MAX_BYTES, &out->lockfile,
                        &out->lockfile_len, err) < 0)
    return frc_error_wrap(err, "cannot read the cached manifest.lock of %s", c->label);
  return 0;
}

static int
hub_error_offline(struct ctx *c, frc_error_t *err)
{
  cleanup_free char *url = frc_hub_repo_url(c->req->config, c->ref->owner);
  cleanup_free char *safe = frc_url_redact(url);
  frc_error_wrap(err, "cannot resolve %s from FloxHub (%s) and this node has no usable copy", c->label,
                 safe);
  return -1;
}

static int
resolve_pinned(struct ctx *c, struct frc_resolved *out, frc_error_t *err)
{
  unsigned gen = c->ref->generation;
  long long age = auth_age(c);
  char commit[41] = "";
  struct live_state ls;
  bool have_live = read_live(c, &ls);

  if (gen_cached(c, gen) && age >= 0 && age < c->req->config->auth_window_seconds)
    return serve(c, gen, have_live ? ls.live : 0, have_live ? ls.commit : NULL, FRC_FROM_CACHE, out,
                 err);

  if (ls_branch(c, commit, err) < 0)
    {
      if (hub_unavailable(*err) && gen_cached(c, gen) && age >= 0)
        {
          frc_log(c->req->log, FRC_LOG_WARNING,
                  "flox-runc: FloxHub is unreachable (%s); starting %s from the node cache for a "
                  "credential FloxHub accepted before",
                  (*err)->msg, c->label);
          frc_error_release(err);
          return serve(c, gen, have_live ? ls.live : 0, have_live ? ls.commit : NULL,
                       FRC_FROM_CACHE_OFFLINE, out, err);
        }
      return hub_unavailable(*err) ? hub_error_offline(c, err) : -1;
    }
  auth_remember(c);
  if (gen_cached(c, gen))
    return serve(c, gen, have_live ? ls.live : 0, commit, FRC_FROM_CACHE_VERIFIED, out, err);

  {
    cleanup_generations struct frc_generations g = { 0 };
    if (fetch_generations(c, commit, &g, err) < 0)
      return -1;
    if (!frc_generations_has(&g, gen))
      {
        cleanup_free char *desc = frc_generations_describe(&g);
        frc_error(err, "generation %u of %s/%s does not exist (%s): fix the :N in "
                       "flox.dev/environment or drop it to follow the live generation",
                  gen, c->ref->owner, c->ref->name, desc);
        return frc_error_code(err, FRC_ECODE_NOT_FOUND);
      }
    if (fetch_generation(c, commit, gen, err) < 0)
      return -1;
    return serve(c, gen, g.live, commit, FRC_FROM_HUB, out, err);
  }
}

static int
resolve_live(struct ctx *c, struct frc_resolved *out, frc_error_t *err)
{
  const struct frc_config *cfg = c->req->config;
  long long age = auth_age(c);
  struct live_state ls;
  bool have_live = read_live(c, &ls);
  char commit[41] = "";

  if (have_live && gen_cached(c, ls.live) && age >= 0 && age < cfg->auth_window_seconds
      && c->now - ls.checked < cfg->fresh_seconds && c->now >= ls.checked)
    return serve(c, ls.live, ls.live, ls.commit, FRC_FROM_CACHE, out, err);

  if (ls_branch(c, commit, err) < 0)
    {
      if (hub_unavailable(*err) && have_live && gen_cached(c, ls.live) && age >= 0)
        {
          frc_log(c->req->log, FRC_LOG_WARNING,
                  "flox-runc: FloxHub is unreachable (%s); starting %s at generation %u, the live "
                  "generation last seen on this node",
                  (*err)->msg, c->label, ls.live);
          frc_error_release(err);
          return serve(c, ls.live, ls.live, ls.commit, FRC_FROM_CACHE_OFFLINE, out, err);
        }
      return hub_unavailable(*err) ? hub_error_offline(c, err) : -1;
    }
  auth_remember(c);

  if (have_live && strcmp(commit, ls.commit) == 0 && gen_cached(c, ls.live))
    {
      ls.checked = c->now;
      if (write_live(c, &ls, err) < 0)
        return -1;
      return serve(c, ls.live, ls.live, commit, FRC_FROM_CACHE_VERIFIED, out, err);
    }
  {
    cleanup_generations struct frc_generations g = { 0 };
    struct live_state fresh = { .live = 0 };
    if (fetch_generations(c, commit, &g, err) < 0)
      return -1;
    if (!gen_cached(c, g.live) && fetch_generation(c, commit, g.live, err) < 0)
      return -1;
    memcpy(fresh.commit, commit, 41);
    fresh.live = g.live;
    fresh.checked = c->now;
    if (write_live(c, &fresh, err) < 0)
      return -1;
    return serve(c, g.live, g.live, commit, FRC_FROM_HUB, out, err);
  }
}

int
frc_hub_resolve(const struct frc_resolve_request *req, struct frc_resolved *out, frc_error_t *err)
{
  struct ctx c = { .req = req, .ref = req->ref };
  cleanup_close int lock_fd = -1;
  int r;

  memset(out, 0, sizeof(*out));
  frc_envref_format(req->ref, c.label, sizeof(c.label));
  c.deadline_ns = req->deadline_ns ? req->deadline_ns
                                   : frc_now_ns() + req->config->deadline_seconds * 1000000000LL;
  if (setup_paths(&c, err) < 0 || lock_environment(&c, &lock_fd, err) < 0)
    r = -1;
  else
    {
      c.now = time(NULL);
      r = req->ref->generation ? resolve_pinned(&c, out, err) : resolve_live(&c, out, err);
    }
  if (c.remote_open)
    frc_git_remote_release(&c.remote);
  free(c.dir);
  free(c.auth_file);
  return r;
}

void
frc_resolved_release(struct frc_resolved *r)
{
  free(r->commit);
  free(r->lockfile_path);
  free(r->lockfile);
  memset(r, 0, sizeof(*r));
}
