#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
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
#include "sandbox.h"
#include "util.h"

#define MAX_ATTEMPTS 4
#define FIRST_BACKOFF_MS 200
/* The fetch child's reply: a lockfile and a few small frames. */
#define REPLY_MAX (FRC_LOCKFILE_MAX_BYTES + 65536)
#define MESSAGE_MAX 4096
#define WARNINGS_MAX 16
#define CA_FILE_MAX (8u << 20)
/* A kept capability advertisement is asked for again after this long: a
 * server that gained a capability (ref-in-want) is noticed. */
#define CAPS_MAX_AGE_S 3600

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
  char *lock_file; /* .lock-<sha256 of the credential>: one resolution per credential */
  char *caps_file; /* <state_dir>/hub/<hub key>/.capabilities; NULL: not kept */
  long long deadline_ns;
  time_t now;
  struct timespec asked; /* CLOCK_REALTIME when the resolution was asked for */
  struct frc_git_remote remote;
  bool remote_open;
  unsigned requests;
  int notes_fd; /* in the fetch child: warnings go to the parent as frames */
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
  c->lock_file = xasprintf("%s/.lock-%s", c->dir, credkey);
  /* a dot name: no owner directory beside it can have it */
  c->caps_file = xasprintf("%s/hub/%s/.capabilities", cfg->state_dir, hubkey);
  if (frc_mkdir_p(c->dir, 0700, err) < 0)
    return frc_error_wrap(err, "cannot prepare the environment cache (state_dir)");
  return 0;
}

/* Single flight: one resolution of the environment per credential at a
 * time, bounded by the deadline (the answer a waiter shares is its own
 * credential's: resolve_pinned and resolve_live).  Per credential, not per
 * environment: a tenant naming another's environment with refused tokens
 * (a FloxHub round trip each) queues behind its own requests only, never
 * the owner's cold creates; every file of the cache is replaced whole, so
 * resolutions of two credentials may write it at once. */
static int
lock_environment(struct ctx *c, int *fd, frc_error_t *err)
{
  cleanup_free char *what = xasprintf("another resolution of %s", c->label);
  return frc_lock_file(c->lock_file, c->deadline_ns, what, fd, err);
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

/* Whether path was written after this resolution was asked for (and not
 * after now: a clock set back proves nothing): by a resolution of the same
 * environment that held the lock meanwhile, whose answer this one shares
 * (single flight: concurrent creates make the requests of one). */
static bool
ts_le(const struct timespec *a, const struct timespec *b)
{
  return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

static bool
written_since_asked(const struct ctx *c, const char *path)
{
  struct stat st;
  struct timespec now;
  if (stat(path, &st) < 0 || clock_gettime(CLOCK_REALTIME, &now) < 0)
    return false;
  return ts_le(&c->asked, &st.st_mtim) && ts_le(&st.st_mtim, &now);
}

/* Not synced (docs/design.md, "The hub cache's files"): only the file's
 * mtime is ever read, an inode's own metadata, so a crash leaves an older
 * acceptance, none (one FloxHub check more) or this one, never a false one. */
static void
auth_remember(struct ctx *c)
{
  frc_error_t ignored = NULL;
  cleanup_free char *dir = xasprintf("%s/auth", c->dir);
  if (frc_mkdir_p(dir, 0700, &ignored) < 0
      || write_file_replace(c->auth_file, c->label, strlen(c->label), 0600, &ignored) < 0)
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

/* A run of this many characters of the token in a message is masked (of a
 * shorter token: the whole token). */
#define TOKEN_RUN_MIN 12

/* base64 of "oauth:<token>": the Authorization header libcurl sends. */
static char *
basic_auth_of(const char *token)
{
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *plain = xasprintf("oauth:%s", token);
  size_t n = strlen(plain);
  char *out = xmalloc0((n + 2) / 3 * 4 + 1), *o = out;
  for (size_t i = 0; i < n; i += 3)
    {
      unsigned v = (unsigned) (unsigned char) plain[i] << 16;
      if (i + 1 < n)
        v |= (unsigned) (unsigned char) plain[i + 1] << 8;
      if (i + 2 < n)
        v |= (unsigned char) plain[i + 2];
      *o++ = tab[v >> 18 & 63];
      *o++ = tab[v >> 12 & 63];
      *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
      *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
  explicit_bzero(plain, n);
  free(plain);
  return out;
}

/* The longest run at msg (up to its end) that occurs in secret, when it
 * has at least TOKEN_RUN_MIN characters (or is all of a shorter secret);
 * else 0. */
static size_t
secret_run(const char *msg, size_t left, const char *secret)
{
  size_t slen = strlen(secret), best = 0;
  size_t min = slen < TOKEN_RUN_MIN ? slen : TOKEN_RUN_MIN;
  const char *at = secret;
  if (min == 0 || left < min)
    return 0;
  while ((at = memmem(at, slen - (size_t) (at - secret), msg, min)) != NULL)
    {
      size_t k = min;
      while (k < left && (size_t) (at - secret) + k < slen && msg[k] == at[k])
        k++;
      if (k > best)
        best = k;
      at++;
    }
  return best;
}

/* Masks the token in msg (in place): a server or a proxy may quote the
 * request back (an error page echoing its headers), and the messages of the
 * conversation are logged.  Every run of TOKEN_RUN_MIN or more characters
 * of the token, of its basic-auth header or of the token as a message
 * quotes it becomes "***": a quote cut short is masked too.  True when
 * something was. */
static bool
mask_token(const struct ctx *c, char *msg)
{
  const char *token = c->req->token;
  char *basic, *quoted;
  size_t len, out = 0;
  bool masked = false;
  if (token == NULL || token[0] == '\0' || msg == NULL)
    return false;
  basic = basic_auth_of(token);
  quoted = escape_for_message(token, strlen(token), strlen(token));
  const char *secrets[3] = { token, basic, quoted };
  len = strlen(msg);
  for (size_t i = 0; i < len;)
    {
      size_t run = 0;
      for (size_t k = 0; k < 3; k++)
        {
          size_t r = secret_run(msg + i, len - i, secrets[k]);
          run = r > run ? r : run;
        }
      if (run > 0)
        {
          size_t m = run < 3 ? run : 3; /* never ahead of i */
          memcpy(msg + out, "***", m);
          out += m;
          i += run;
          masked = true;
        }
      else
        msg[out++] = msg[i++];
    }
  msg[out] = '\0';
  explicit_bzero(basic, strlen(basic));
  explicit_bzero(quoted, strlen(quoted));
  free(basic);
  free(quoted);
  return masked;
}

/* Whether the server's capability advertisement quotes the token: then it
 * is not kept on the node. */
static bool
quotes_token(const struct ctx *c, const char *adv, size_t len)
{
  cleanup_free char *copy = xstrndup(adv, len); /* a v2 one holds no NUL */
  bool r = mask_token(c, copy);
  explicit_bzero(copy, strlen(copy));
  return r;
}

/* A warning of the network conversation: logged by the parent (the child
 * cannot open the root-owned log file). */
static void __attribute__((format(printf, 2, 3)))
note_warning(struct ctx *c, const char *fmt, ...)
{
  va_list ap;
  cleanup_free char *msg = NULL;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  if (msg == NULL)
    return;
  mask_token(c, msg);
  if (c->notes_fd >= 0)
    {
      struct frc_frames f = { 0 };
      frc_frames_put(&f, 'W', msg, strlen(msg));
      (void) frc_frames_flush(&f, c->notes_fd);
      frc_frames_release(&f);
    }
  else
    frc_log(c->req->log, FRC_LOG_WARNING, "%s", msg);
}

/* Sleeps before attempt `attempt` (1-based) if the deadline allows it. */
static bool
backoff(struct ctx *c, int attempt, frc_error_t err)
{
  long long ms = (long long) FIRST_BACKOFF_MS << (attempt - 1);
  struct timespec ts = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
  if (attempt >= MAX_ATTEMPTS || frc_now_ns() + ms * 1000000LL >= c->deadline_ns)
    return false;
  note_warning(c, "flox-runc: FloxHub request for %s failed (%s); retrying in %lld ms", c->label,
               err->msg, ms);
  nanosleep(&ts, NULL);
  return true;
}

/* A request refused by a server that may have changed since its capability
 * advertisement was kept (lib/git.h frc_git_remote_assume), or an HTTP 404
 * where discovery would have followed a redirect (an owner moved; the kept
 * advertisement skips GET info/refs, which redirects; a branch that ls-refs
 * does not name is the server's answer): the next attempt asks the server
 * again, at once (once: it is not assumed then). */
static bool
assumed_stale(struct ctx *c, frc_error_t *err)
{
  int code = frc_error_get_code(*err);
  if (!c->remote.assumed
      || (code != FRC_ECODE_SERVER && (code != FRC_ECODE_NOT_FOUND || c->remote.status != 404)))
    return false;
  frc_git_remote_rediscover(&c->remote);
  frc_error_release(err);
  return true;
}

/* The branch's commit, retried; with the commit's files when with_files
 * and the server can send them in the same request (lib/git.h
 * frc_git_fetch_branch).  AUTH and NOT_FOUND become the messages the user
 * sees. */
static int
ls_branch(struct ctx *c, bool with_files, char commit[41], frc_error_t *err)
{
  for (int attempt = 1;; attempt++)
    {
      int r = with_files ? frc_git_fetch_branch(&c->remote, c->ref->name, commit, err)
                         : frc_git_ls_ref(&c->remote, c->ref->name, commit, err);
      c->requests = frc_git_remote_requests(&c->remote);
      if (r == 0)
        return 0;
      if (assumed_stale(c, err))
        continue;
      if (!retryable(*err) || !backoff(c, attempt, *err))
        break;
      frc_error_release(err);
    }
  switch (frc_error_get_code(*err))
    {
    case FRC_ECODE_AUTH:
      {
        /* Through a proxy, the refusal may be the proxy's own. */
        const char *proxy = frc_http_proxy_in_use(&c->remote.http, c->remote.url);
        cleanup_free char *psafe = proxy ? frc_url_redact(proxy) : NULL;
        frc_error_release(err);
        frc_error(err, "environment %s not found or not accessible: %s%s%s%s%s", c->label,
                  FIX_PRIVATE,
                  c->req->token ? " (FloxHub refused the token that is mounted there)" : "",
                  psafe ? "; or the proxy " : "", psafe ? psafe : "",
                  psafe ? " refused the request: check it and http_proxy/https_proxy/no_proxy"
                        : "");
        return frc_error_code(err, FRC_ECODE_AUTH);
      }
    case FRC_ECODE_NOT_FOUND:
      {
        cleanup_free char *hub = frc_url_mask(c->req->config->floxhub_url);
        frc_error_release(err);
        frc_error(err, "environment %s/%s not found on FloxHub (%s): check the owner and name in "
                       "flox.dev/environment",
                  c->ref->owner, c->ref->name, hub);
        return frc_error_code(err, FRC_ECODE_NOT_FOUND);
      }
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
      if (assumed_stale(c, err))
        continue;
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

/* Fetches and validates generation gen's manifest.lock (in the child). */
static int
fetch_lockfile(struct ctx *c, const char *commit, unsigned gen, char **text, size_t *len,
               frc_error_t *err)
{
  char rel[64];
  const char *paths[] = { rel, NULL };
  char *contents[1] = { NULL };
  size_t lens[1] = { 0 };
  struct frc_lockfile lock;
  frc_error_t perr = NULL;

  snprintf(rel, sizeof(rel), "%u/env/manifest.lock", gen);
  if (read_files(c, commit, paths, contents, lens, err) < 0)
    return frc_error_wrap(err, "cannot read generation %u of %s/%s", gen, c->ref->owner,
                          c->ref->name);
  /* Malformed content is never handed over; a lockfile without packages
   * for this system is a property of the generation and is reported by the
   * caller. */
  if (frc_lockfile_parse(contents[0], lens[0], frc_nix_system(), &lock, &perr) < 0
      && frc_error_get_code(perr) != FRC_ECODE_NOT_FOUND)
    {
      frc_lockfile_release(&lock);
      free(contents[0]);
      *err = perr;
      return frc_error_wrap(err, "generation %u of %s/%s", gen, c->ref->owner, c->ref->name);
    }
  frc_lockfile_release(&lock);
  frc_error_release(&perr);
  *text = contents[0];
  *len = lens[0];
  return 0;
}

/* Caches a lockfile the fetch child validated (in the root parent): the
 * child may be the attacker's, so the parent parses it again, with the
 * parser's bounds, before anything is written (the same rule as the
 * child's: only "no packages for this system" is not the text's fault). */
static int
store_generation(struct ctx *c, unsigned gen, const char *text, size_t len, frc_error_t *err)
{
  cleanup_free char *path = gen_path(c, gen);
  cleanup_free char *dir = xasprintf("%s/gen/%u", c->dir, gen);
  cleanup_lockfile struct frc_lockfile lock = { 0 };
  frc_error_t perr = NULL;

  if (frc_lockfile_parse(text, len, frc_nix_system(), &lock, &perr) < 0)
    {
      if (frc_error_get_code(perr) != FRC_ECODE_NOT_FOUND)
        {
          *err = perr;
          return frc_error_wrap(err, "the fetch child handed over a lockfile for generation %u of %s "
                                     "that does not parse: not cached",
                                gen, c->label);
        }
      frc_error_release(&perr);
    }
  if (frc_mkdir_p(dir, 0700, err) < 0 || write_file_atomic(path, text, len, 0600, err) < 0)
    return frc_error_wrap(err, "cannot cache %s", c->label);
  return 0;
}

/* The fetch: the root parent reads what it knows from the node cache into a
 * plan, forks once, and the child (lib/sandbox.h: nobody, no capabilities,
 * no_new_privs, seccomp) has the whole conversation with FloxHub and parses
 * every byte of it; it hands back only validated results, which the parent
 * bounds and checks again before it writes the cache. */
struct fetch_plan
{
  unsigned pinned; /* the generation asked for; 0: the live one */
  bool verify_only; /* pinned and cached: the branch (the credential check) is enough */
  const char *known_commit; /* live: the commit last seen, its live generation cached */
  unsigned *cached; /* generations with a manifest.lock on the node */
  size_t n_cached;
  char *ca_pem; /* ca_file, read as root before the drop */
  size_t ca_pem_len;
  char *caps; /* the hub's v2 capability advertisement kept on the node */
  size_t caps_len;
};

struct fetch_result
{
  bool discovered; /* the child asked for the capabilities: caps is the answer to keep */
  char *caps; /* NULL or "": nothing to keep */
  size_t caps_len;
  char commit[41];
  unsigned live; /* 0: the child stopped after the branch */
  unsigned gen; /* the generation of lockfile */
  char *lockfile;
  size_t lockfile_len;
};

static void
fetch_plan_release(struct fetch_plan *p)
{
  free(p->cached);
  free(p->ca_pem);
  free(p->caps);
}

static void
fetch_result_release(struct fetch_result *r)
{
  free(r->lockfile);
  free(r->caps);
  memset(r, 0, sizeof(*r));
}

static bool
plan_cached(const struct fetch_plan *p, unsigned gen)
{
  for (size_t i = 0; i < p->n_cached; i++)
    if (p->cached[i] == gen)
      return true;
  return false;
}

/* The generations cached on the node (the child cannot read the cache). */
static void
list_cached(struct ctx *c, struct fetch_plan *p)
{
  cleanup_free char *gdir = xasprintf("%s/gen", c->dir);
  DIR *d = opendir(gdir);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL && p->n_cached < 100000)
    {
      char *end;
      unsigned long n = strtoul(e->d_name, &end, 10);
      if (e->d_name[0] < '1' || e->d_name[0] > '9' || *end != '\0' || n > 0xffffffffUL
          || !gen_cached(c, (unsigned) n))
        continue;
      p->cached = xrealloc(p->cached, (p->n_cached + 1) * sizeof(unsigned));
      p->cached[p->n_cached++] = (unsigned) n;
    }
  closedir(d);
}

static int
child_work(struct ctx *c, const struct fetch_plan *p, struct frc_frames *f, frc_error_t *err)
{
  struct frc_http_opts opts = {
    .ca_file = c->req->config->ca_file,
    .ca_pem = p->ca_pem,
    .ca_pem_len = p->ca_pem_len,
    .user = c->req->token ? "oauth" : NULL,
    .password = c->req->token,
    .deadline_ns = c->deadline_ns,
    .no_proxy = c->req->config->no_proxy,
  };
  cleanup_free char *url = frc_hub_repo_url(c->req->config, c->ref->owner);
  opts.proxy = str_has_prefix(url, "https://") ? c->req->config->https_proxy
                                               : c->req->config->http_proxy;
  cleanup_generations struct frc_generations g = { 0 };
  char commit[41] = "";
  unsigned target;

  if (frc_git_remote_init(&c->remote, url, &opts, err) < 0)
    return -1;
  c->remote_open = true;
  /* The server's capabilities as a former resolution learnt them: no
   * info/refs round trip (v2; its answer is the same for every owner). */
  if (p->caps)
    (void) frc_git_remote_assume(&c->remote, p->caps, p->caps_len);
  /* A commit the node may know already: only its id (ls-refs). */
  if (ls_branch(c, !p->verify_only && !p->known_commit, commit, err) < 0)
    return -1;
  frc_frames_put(f, 'C', commit, 40);
  if (p->verify_only || (p->known_commit && strcmp(commit, p->known_commit) == 0))
    return 0;
  if (fetch_generations(c, commit, &g, err) < 0)
    return -1;
  frc_frames_put_u32(f, 'L', g.live);
  target = p->pinned ? p->pinned : g.live;
  if (p->pinned && !frc_generations_has(&g, target))
    {
      cleanup_free char *desc = frc_generations_describe(&g);
      frc_error(err, "generation %u of %s/%s does not exist (%s): fix the :N in "
                     "flox.dev/environment or drop it to follow the live generation",
                target, c->ref->owner, c->ref->name, desc);
      return frc_error_code(err, FRC_ECODE_NOT_FOUND);
    }
  if (!plan_cached(p, target))
    {
      char *text = NULL;
      size_t len = 0;
      if (fetch_lockfile(c, commit, target, &text, &len, err) < 0)
        return -1;
      frc_frames_put_u32(f, 'G', target);
      frc_frames_put(f, 'M', text, len);
      free(text);
    }
  return 0;
}

struct child_job
{
  struct ctx *c;
  const struct fetch_plan *plan;
};

/* Runs in the sandboxed child. */
static int
child_fetch(void *data, int out)
{
  struct child_job *j = data;
  struct ctx *c = j->c;
  struct frc_frames f = { 0 };
  frc_error_t err = NULL;

  c->notes_fd = out;
  if (child_work(c, j->plan, &f, &err) < 0)
    {
      mask_token(c, err->msg);
      frc_frames_put_u32(&f, 'E', (uint32_t) err->code);
      frc_frames_put(&f, 'e', err->msg, strlen(err->msg));
      frc_error_release(&err);
    }
  frc_frames_put_u32(&f, 'R', c->requests);
  /* Asked now: the advertisement to keep, or none (v0, too large, quoting
   * the token); a redirected discovery says where one owner went, nothing
   * of the hub's capabilities: what is kept stays. */
  if (c->remote_open && c->remote.discovered && !c->remote.assumed && !c->remote.redirected)
    {
      const char *adv = c->remote.advertisement;
      size_t len = c->remote.advertisement_len;
      if (adv == NULL || quotes_token(c, adv, len))
        frc_frames_put(&f, 'D', "", 0);
      else
        frc_frames_put(&f, 'D', adv, len);
    }
  if (c->remote_open)
    frc_git_remote_release(&c->remote); /* wipes its copy of the token */
  if (c->req->token)
    explicit_bzero((char *) c->req->token, strlen(c->req->token));
  if (frc_frames_flush(&f, out) < 0)
    return 1;
  frc_frames_release(&f);
  return 0;
}

/* A copy of a message from the child, control characters replaced. */
static char *
child_text(const char *d, size_t n)
{
  char *s = xstrndup(d, n);
  for (char *q = s; *q; q++)
    if ((unsigned char) *q < 0x20 || *q == 0x7f)
      *q = '?';
  return s;
}

static bool
is_commit_hex(const char *d, size_t n)
{
  if (n != 40)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
      return false;
  return true;
}

static int
bad_reply(struct ctx *c, const char *what, frc_error_t *err)
{
  frc_error(err, "the fetch child of %s sent an invalid reply (%s)", c->label, what);
  return frc_error_code(err, FRC_ECODE_SERVER);
}

/* Reads the child's frames into out, bounding and checking each. */
static int
parse_reply(struct ctx *c, const struct fetch_plan *p, const char *reply, size_t len,
            struct fetch_result *out, frc_error_t *err)
{
  size_t off = 0, dl, warnings = 0;
  const char *d;
  char tag;
  uint32_t v, code = 0;
  bool failed = false;
  cleanup_free char *msg = NULL;
  frc_error_t perr = NULL;

  while (frc_frames_next(reply, len, &off, &tag, &d, &dl, FRC_LOCKFILE_MAX_BYTES, &perr))
    switch (tag)
      {
      case 'W':
        if (dl <= MESSAGE_MAX && warnings++ < WARNINGS_MAX)
          {
            cleanup_free char *w = child_text(d, dl);
            frc_log(c->req->log, FRC_LOG_WARNING, "%s", w);
          }
        break;
      case 'E':
        if (!frc_frame_u32(d, dl, &code))
          return bad_reply(c, "error code", err);
        failed = true;
        break;
      case 'e':
        if (dl > MESSAGE_MAX || msg)
          return bad_reply(c, "error message", err);
        msg = child_text(d, dl);
        break;
      case 'C':
        if (!is_commit_hex(d, dl) || out->commit[0])
          return bad_reply(c, "commit", err);
        memcpy(out->commit, d, 40);
        out->commit[40] = '\0';
        break;
      case 'L':
        if (!frc_frame_u32(d, dl, &v) || v == 0 || out->live)
          return bad_reply(c, "live generation", err);
        out->live = v;
        break;
      case 'G':
        if (!frc_frame_u32(d, dl, &v) || v == 0 || out->gen)
          return bad_reply(c, "generation", err);
        out->gen = v;
        break;
      case 'M':
        if (out->lockfile || out->gen == 0 || memchr(d, '\0', dl) != NULL)
          return bad_reply(c, "lockfile", err);
        out->lockfile = xstrndup(d, dl);
        out->lockfile_len = dl;
        break;
      case 'R':
        if (!frc_frame_u32(d, dl, &v))
          return bad_reply(c, "request count", err);
        c->requests = v;
        break;
      case 'D':
        /* kept as bytes, only ever parsed by a fetch child */
        if (dl > FRC_GIT_CAPS_MAX || out->discovered)
          return bad_reply(c, "capabilities", err);
        out->discovered = true;
        out->caps = xmalloc0(dl + 1);
        memcpy(out->caps, d, dl);
        out->caps_len = dl;
        break;
      default:
        return bad_reply(c, "unknown frame", err);
      }
  if (perr)
    {
      cleanup_free char *why = xstrdup(perr->msg);
      frc_error_release(&perr);
      return bad_reply(c, why, err);
    }
  if (failed)
    {
      frc_error(err, "%s", msg ? msg : "the fetch failed");
      return frc_error_code(err, code <= FRC_ECODE_DEADLINE ? (int) code : FRC_ECODE_OTHER);
    }
  if (out->commit[0] == '\0')
    return bad_reply(c, "no commit", err);
  /* A lockfile only for the generation the plan asked for. */
  if (out->lockfile
      && (out->live == 0 || out->gen != (p->pinned ? p->pinned : out->live)))
    return bad_reply(c, "lockfile of another generation", err);
  return 0;
}

/* The capabilities the child asked for, kept for the next resolutions with
 * this hub (removed when the server answered without a v2 advertisement).
 * Not synced (docs/design.md, "The hub cache's files"): a file a crash left
 * empty or torn is no v2 advertisement (frc_git_remote_assume refuses it:
 * discovery as without one), and a server refusing what it assumed is asked
 * again (frc_git_remote_rediscover). */
static void
keep_caps(struct ctx *c, const struct fetch_result *r)
{
  frc_error_t ignored = NULL;
  if (c->caps_file == NULL || !r->discovered)
    return;
  if (r->caps_len == 0)
    unlink(c->caps_file);
  else if (write_file_replace(c->caps_file, r->caps, r->caps_len, 0600, &ignored) < 0)
    frc_error_release(&ignored);
}

static int
fetch(struct ctx *c, struct fetch_plan *p, struct fetch_result *out, frc_error_t *err)
{
  const struct frc_config *cfg = c->req->config;
  struct frc_sandbox sb = {
    .uid = (uid_t) cfg->fetch_uid,
    .gid = (gid_t) cfg->fetch_gid,
    .deadline_ns = c->deadline_ns,
    .max_reply = REPLY_MAX,
  };
  struct child_job job = { c, p };
  cleanup_free char *reply = NULL;
  size_t len = 0;
  int status = 0;
  struct stat st;

  memset(out, 0, sizeof(*out));
  /* The CA bundle may be readable by root only: read it before the drop. */
  const char *ca = cfg->ca_file ? cfg->ca_file : frc_http_env_ca_file();
  if (ca && read_file_bounded(ca, CA_FILE_MAX, &p->ca_pem, &p->ca_pem_len, err) < 0)
    return frc_error_wrap(err, "cannot read ca_file");
  if (!p->verify_only)
    list_cached(c, p);
  if (c->caps_file && stat(c->caps_file, &st) == 0 && st.st_mtime <= c->now
      && c->now - st.st_mtime < CAPS_MAX_AGE_S)
    {
      frc_error_t ignored = NULL;
      if (read_file_bounded(c->caps_file, FRC_GIT_CAPS_MAX, &p->caps, &p->caps_len, &ignored) < 0)
        frc_error_release(&ignored);
    }
  if (!p->verify_only && p->known_commit == NULL && c->req->on_cold_fetch)
    c->req->on_cold_fetch(c->req->on_cold_fetch_data);
  if (frc_sandbox_run(&sb, child_fetch, &job, &reply, &len, &status, err) < 0)
    return frc_error_wrap(err, "cannot resolve %s from FloxHub", c->label);
  if (parse_reply(c, p, reply, len, out, err) < 0)
    {
      keep_caps(c, out);
      return -1;
    }
  keep_caps(c, out);
  if (status != 0)
    return bad_reply(c, "it exited with an error", err);
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
  {
    cleanup_close int fd = open(out->lockfile_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
      {
        frc_error_errno(err, errno, "cannot open `%s`", out->lockfile_path);
        return frc_error_wrap(err, "cannot read the cached manifest.lock of %s", c->label);
      }
    if (c->req->lockfile_later && S_ISREG(st.st_mode) && st.st_size > 0
        && (unsigned long long) st.st_size <= FRC_LOCKFILE_MAX_BYTES)
      {
        out->lockfile_fd = steal_fd(&fd);
        out->lockfile_open = true;
      }
    else if (read_fd_bounded(fd, out->lockfile_path, FRC_LOCKFILE_MAX_BYTES, &out->lockfile,
                             &out->lockfile_len, err)
             < 0)
      return frc_error_wrap(err, "cannot read the cached manifest.lock of %s", c->label);
    if (S_ISREG(st.st_mode))
      snprintf(out->lockfile_id, sizeof(out->lockfile_id), "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld",
               (unsigned long long) st.st_dev, (unsigned long long) st.st_ino, (long long) st.st_size,
               (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long) st.st_ctim.tv_sec,
               st.st_ctim.tv_nsec);
  }
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

/* The fetch failed: the offline fallback when the hub could not answer and
 * the node has a copy for a credential FloxHub accepted before. */
static int
fetch_failed(struct ctx *c, unsigned gen, unsigned live, const char *commit, bool cached,
             long long age, const char *what, struct frc_resolved *out, frc_error_t *err)
{
  if (frc_error_get_code(*err) == FRC_ECODE_AUTH)
    auth_forget(c);
  if (hub_unavailable(*err) && cached && age >= 0)
    {
      frc_log(c->req->log, FRC_LOG_WARNING, "flox-runc: FloxHub is unreachable (%s); starting %s %s",
              (*err)->msg, c->label, what);
      frc_error_release(err);
      return serve(c, gen, live, commit, FRC_FROM_CACHE_OFFLINE, out, err);
    }
  return hub_unavailable(*err) ? hub_error_offline(c, err) : -1;
}

static int
resolve_pinned(struct ctx *c, struct frc_resolved *out, frc_error_t *err)
{
  unsigned gen = c->ref->generation;
  long long age = auth_age(c);
  struct live_state ls;
  bool have_live = read_live(c, &ls);
  bool cached = gen_cached(c, gen);
  struct fetch_plan plan __attribute__((cleanup(fetch_plan_release))) = {
    .pinned = gen,
    .verify_only = cached,
  };
  struct fetch_result fr __attribute__((cleanup(fetch_result_release))) = { .live = 0 };

  if (cached && age >= 0 && age < c->req->config->auth_window_seconds)
    return serve(c, gen, have_live ? ls.live : 0, have_live ? ls.commit : NULL, FRC_FROM_CACHE, out,
                 err);
  /* FloxHub accepted this credential for this environment while this
   * resolution waited for the lock. */
  if (cached && written_since_asked(c, c->auth_file))
    return serve(c, gen, have_live ? ls.live : 0, have_live ? ls.commit : NULL,
                 FRC_FROM_CACHE_VERIFIED, out, err);

  if (fetch(c, &plan, &fr, err) < 0)
    return fetch_failed(c, gen, have_live ? ls.live : 0, have_live ? ls.commit : NULL, cached, age,
                        "from the node cache for a credential FloxHub accepted before", out, err);
  auth_remember(c);
  if (cached)
    return serve(c, gen, have_live ? ls.live : 0, fr.commit, FRC_FROM_CACHE_VERIFIED, out, err);
  if (fr.lockfile == NULL)
    return bad_reply(c, "no lockfile", err);
  if (store_generation(c, gen, fr.lockfile, fr.lockfile_len, err) < 0)
    return -1;
  return serve(c, gen, fr.live, fr.commit, FRC_FROM_HUB, out, err);
}

static int
resolve_live(struct ctx *c, struct frc_resolved *out, frc_error_t *err)
{
  const struct frc_config *cfg = c->req->config;
  long long age = auth_age(c);
  struct live_state ls;
  bool have_live = read_live(c, &ls);
  bool cached = have_live && gen_cached(c, ls.live);
  struct fetch_plan plan __attribute__((cleanup(fetch_plan_release))) = {
    .known_commit = cached ? ls.commit : NULL,
  };
  struct fetch_result fr __attribute__((cleanup(fetch_result_release))) = { .live = 0 };
  struct live_state fresh = { .live = 0 };
  char what[64];

  if (cached && age >= 0 && age < cfg->auth_window_seconds && c->now - ls.checked < cfg->fresh_seconds
      && c->now >= ls.checked)
    return serve(c, ls.live, ls.live, ls.commit, FRC_FROM_CACHE, out, err);
  /* Another resolution asked FloxHub, for this credential, while this one
   * waited for the lock: single flight shares its answer. */
  if (cached)
    {
      cleanup_free char *live_path = xasprintf("%s/live.json", c->dir);
      if (written_since_asked(c, c->auth_file) && written_since_asked(c, live_path))
        return serve(c, ls.live, ls.live, ls.commit, FRC_FROM_CACHE_VERIFIED, out, err);
    }

  if (fetch(c, &plan, &fr, err) < 0)
    {
      snprintf(what, sizeof(what), "at generation %u, the live generation last seen on this node",
               have_live ? ls.live : 0);
      return fetch_failed(c, ls.live, ls.live, ls.commit, cached, age, what, out, err);
    }
  auth_remember(c);

  if (cached && strcmp(fr.commit, ls.commit) == 0)
    {
      ls.checked = c->now;
      if (write_live(c, &ls, err) < 0)
        return -1;
      return serve(c, ls.live, ls.live, fr.commit, FRC_FROM_CACHE_VERIFIED, out, err);
    }
  if (fr.live == 0)
    return bad_reply(c, "no live generation", err);
  if (fr.lockfile && store_generation(c, fr.live, fr.lockfile, fr.lockfile_len, err) < 0)
    return -1;
  if (!gen_cached(c, fr.live))
    return bad_reply(c, "no lockfile", err);
  memcpy(fresh.commit, fr.commit, 41);
  fresh.live = fr.live;
  fresh.checked = c->now;
  if (write_live(c, &fresh, err) < 0)
    return -1;
  return serve(c, fr.live, fr.live, fr.commit, FRC_FROM_HUB, out, err);
}

/* The deadline passed while other resolutions of this environment held the
 * lock (their fetches took that long: FloxHub is slow or unreachable, and
 * each waiter would take its whole deadline in turn): as when this
 * resolution's own request hits the deadline, the node's copy for a
 * credential FloxHub accepted before.  Read without the lock: every file
 * of the cache is replaced whole. */
static int
lock_timed_out(struct ctx *c, struct frc_resolved *out, frc_error_t *err)
{
  struct live_state ls;
  bool have_live;
  unsigned gen;
  char what[64];

  if (frc_error_get_code(*err) != FRC_ECODE_DEADLINE)
    return -1;
  c->now = time(NULL);
  have_live = read_live(c, &ls);
  gen = c->ref->generation ? c->ref->generation : have_live ? ls.live : 0;
  if (c->ref->generation)
    snprintf(what, sizeof(what), "from the node cache for a credential FloxHub accepted before");
  else
    snprintf(what, sizeof(what), "at generation %u, the live generation last seen on this node", gen);
  return fetch_failed(c, gen, have_live ? ls.live : 0, have_live ? ls.commit : NULL,
                      gen != 0 && gen_cached(c, gen), auth_age(c), what, out, err);
}

/* The node's copy answers without FloxHub (the first test of
 * resolve_pinned and resolve_live): read without the lock, as every file
 * of the cache is replaced whole and a generation's lockfile is written
 * before live.json names it.  The lock serialises one environment's
 * resolutions whoever asks, so a tenant's pods naming another's
 * environment with refused tokens (a round trip each under the lock) would
 * otherwise hold up its creates.  1: served, 0: ask under the lock. */
static int
resolve_cached(struct ctx *c, struct frc_resolved *out, frc_error_t *err)
{
  const struct frc_config *cfg = c->req->config;
  long long age = auth_age(c);
  struct live_state ls;
  bool have_live = read_live(c, &ls);
  unsigned gen = c->ref->generation;

  if (age < 0 || age >= cfg->auth_window_seconds)
    return 0;
  if (gen == 0 && !(have_live && c->now - ls.checked < cfg->fresh_seconds && c->now >= ls.checked))
    return 0;
  if (!gen_cached(c, gen ? gen : ls.live))
    return 0;
  if ((gen ? serve(c, gen, have_live ? ls.live : 0, have_live ? ls.commit : NULL, FRC_FROM_CACHE,
                   out, err)
           : serve(c, ls.live, ls.live, ls.commit, FRC_FROM_CACHE, out, err))
      < 0)
    {
      /* (the locked path decides) */
      frc_error_release(err);
      frc_resolved_release(out);
      return 0;
    }
  return 1;
}

int
frc_hub_resolve(const struct frc_resolve_request *req, struct frc_resolved *out, frc_error_t *err)
{
  struct ctx c = { .req = req, .ref = req->ref, .notes_fd = -1 };
  cleanup_close int lock_fd = -1;
  int r;

  memset(out, 0, sizeof(*out));
  clock_gettime(CLOCK_REALTIME, &c.asked);
  frc_envref_format(req->ref, c.label, sizeof(c.label));
  c.deadline_ns = req->deadline_ns ? req->deadline_ns
                                   : frc_now_ns() + req->config->deadline_seconds * 1000000000LL;
  c.now = time(NULL);
  if (setup_paths(&c, err) < 0)
    r = -1;
  else if (resolve_cached(&c, out, err))
    r = 0;
  else if (lock_environment(&c, &lock_fd, err) < 0)
    r = lock_timed_out(&c, out, err);
  else
    {
      c.now = time(NULL);
      r = req->ref->generation ? resolve_pinned(&c, out, err) : resolve_live(&c, out, err);
    }
  if (c.remote_open)
    frc_git_remote_release(&c.remote);
  free(c.dir);
  free(c.auth_file);
  free(c.lock_file);
  free(c.caps_file);
  return r;
}

int
frc_hub_check_access(const struct frc_config *cfg, const struct frc_envref *ref, const char *token,
                     long long deadline_ns, char commit[41], frc_error_t *err)
{
  static const struct frc_logger quiet = { .path = NULL, .stderr_fd = -1 };
  struct frc_resolve_request req = {
    .config = cfg, .ref = ref, .token = token, .log = &quiet, .deadline_ns = deadline_ns
  };
  struct ctx c = { .req = &req, .ref = ref, .notes_fd = -1, .deadline_ns = deadline_ns };
  struct fetch_plan plan __attribute__((cleanup(fetch_plan_release))) = { .verify_only = true };
  struct fetch_result fr __attribute__((cleanup(fetch_result_release))) = { .live = 0 };

  frc_envref_format(ref, c.label, sizeof(c.label));
  if (fetch(&c, &plan, &fr, err) < 0)
    return -1;
  memcpy(commit, fr.commit, 41);
  return 0;
}

int
frc_resolved_lockfile(struct frc_resolved *r, frc_error_t *err)
{
  int rc = 0;
  if (r->lockfile || !r->lockfile_open)
    return r->lockfile ? 0 : frc_error(err, "no manifest.lock was resolved");
  if (read_fd_bounded(r->lockfile_fd, r->lockfile_path, FRC_LOCKFILE_MAX_BYTES, &r->lockfile,
                      &r->lockfile_len, err)
      < 0)
    rc = frc_error_wrap(err, "cannot read the cached manifest.lock `%s`", r->lockfile_path);
  close(r->lockfile_fd);
  r->lockfile_open = false;
  return rc;
}

void
frc_resolved_release(struct frc_resolved *r)
{
  if (r->lockfile_open)
    close(r->lockfile_fd);
  free(r->commit);
  free(r->lockfile_path);
  free(r->lockfile);
  memset(r, 0, sizeof(*r));
}
