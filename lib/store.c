#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dl.h"
#include "http.h"
#include "lockfile.h"
#include "proc.h"
#include "store.h"
#include "util.h"

static const char *const nix_dirs[] = {
  "/nix/var/nix/profiles/default/bin", "/run/current-system/sw/bin", "/usr/local/bin", "/usr/bin",
  "/bin", NULL,
};

static bool
is_root_store(const struct frc_config *c)
{
  return strcmp(c->store_root, "/") == 0;
}

char *
frc_store_physical(const struct frc_config *c, const char *store_path)
{
  if (is_root_store(c))
    return xstrdup(store_path);
  return xasprintf("%s%s", c->store_root, store_path);
}

bool
frc_store_all_present(const struct frc_config *c, char *const *paths)
{
  cleanup_free char *dir = frc_store_physical(c, "/nix/store");
  /* each path's name looked up in the store directory opened once, not
   * its full name walked again (a warm create of 150 packages: ~0.1 ms) */
  cleanup_close int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

  for (; paths && *paths; paths++)
    {
      const char *name = str_has_prefix(*paths, "/nix/store/") ? *paths + strlen("/nix/store/") : NULL;
      struct stat st;
      if (dfd >= 0 && name && name[0] && strchr(name, '/') == NULL && strcmp(name, "..") != 0)
        {
          if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return false;
          continue;
        }
      {
        cleanup_free char *p = frc_store_physical(c, *paths);
        if (lstat(p, &st) < 0)
          return false;
      }
    }
  return true;
}

char *
frc_nix_store_find(void)
{
  const char *path = getenv("PATH");
  cleanup_free char *dirs = xstrdup(path ? path : "");
  char *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
    {
      cleanup_free char *cand = xasprintf("%s/nix-store", d);
      if (d[0] == '/' && access(cand, X_OK) == 0)
        return steal_pointer(&cand);
    }
  for (const char *const *d = nix_dirs; *d; d++)
    {
      cleanup_free char *cand = xasprintf("%s/nix-store", *d);
      if (access(cand, X_OK) == 0)
        return steal_pointer(&cand);
    }
  return NULL;
}

static char *
join(char *const *v, const char *sep)
{
  size_t n = 1;
  char *out;
  for (char *const *p = v; p && *p; p++)
    n += strlen(*p) + strlen(sep);
  out = xmalloc0(n);
  for (char *const *p = v; p && *p; p++)
    {
      if (p != v)
        strcat(out, sep);
      strcat(out, *p);
    }
  return out;
}

/* The %XX escapes of a URL's userinfo decoded (as curl decodes them), or
 * NULL when that gives a control character or a NUL (malloc'd). */
static char *
userinfo_decode(const char *s, size_t len)
{
  char *out = xmalloc0(len + 1), *o = out;
  for (size_t i = 0; i < len; i++)
    {
      unsigned char c = (unsigned char) s[i];
      if (c == '%' && i + 2 < len && frc_hex_digit(s[i + 1]) >= 0 && frc_hex_digit(s[i + 2]) >= 0)
        {
          c = (unsigned char) (frc_hex_digit(s[i + 1]) * 16 + frc_hex_digit(s[i + 2]));
          i += 2;
        }
      if (c < 0x20 || c == 0x7f)
        {
          free(out);
          return NULL;
        }
      *o++ = (char) c;
    }
  return out;
}

/* Appends "<word> <v>" to *text: v as it is, or quoted (curl >= 7.84 reads
 * "..." with \" and \\ escapes) when it holds white space, a quote or a
 * backslash, or is empty. */
static void
netrc_add(char **text, const char *word, const char *v)
{
  char *old = *text;
  if (v[0] && strpbrk(v, " \t\"\\") == NULL)
    *text = xasprintf("%s%s %s", old, word, v);
  else
    {
      char *q = xmalloc0(2 * strlen(v) + 3), *o = q;
      *o++ = '"';
      for (const char *c = v; *c; c++)
        {
          if (*c == '"' || *c == '\\')
            *o++ = '\\';
          *o++ = *c;
        }
      *o = '"';
      *text = xasprintf("%s%s %s", old, word, q);
      free(q);
    }
  free(old);
}

int
frc_store_netrc(char *const *substituters, char **text, frc_error_t *err)
{
  cleanup_free char *out = xstrdup("");
  cleanup_strv char **hosts = xmalloc0(sizeof(char *)), **creds = xmalloc0(sizeof(char *));
  size_t nhosts = 0, ncreds = 0;

  *text = NULL;
  for (char *const *s = substituters; s && *s; s++)
    {
      size_t start, len, hlen;
      const char *host, *colon;
      bool seen = false;
      cleanup_free char *shown = NULL, *h = NULL, *user = NULL, *pass = NULL, *cred = NULL;
      if (!frc_url_userinfo(*s, &start, &len) || len == 0)
        continue;
      shown = frc_url_mask(*s);
      host = *s + start + len + 1;
      if (host[0] == '[') /* an IPv6 literal: curl matches it without brackets */
        {
          const char *end = strchr(host, ']');
          hlen = end ? (size_t) (end - host - 1) : 0;
          host++;
        }
      else
        hlen = strcspn(host, ":/?#");
      colon = memchr(*s + start, ':', len);
      user = userinfo_decode(*s + start, colon ? (size_t) (colon - *s - start) : len);
      pass = colon ? userinfo_decode(colon + 1, (size_t) (*s + start + len - colon - 1)) : xstrdup("");
      if (hlen == 0 || user == NULL || pass == NULL)
        return frc_error(err, "the substituter %s has credentials Nix's netrc file cannot hold (a "
                              "control character, or no host): fix `substituters`",
                         shown);
      h = xstrndup(host, hlen);
      cred = xasprintf("%s:%s", user, pass);
      for (size_t i = 0; i < nhosts && !seen; i++)
        if (strcasecmp(hosts[i], h) == 0) /* curl's match */
          {
            if (strcmp(creds[i], cred) != 0)
              return frc_error(err, "the substituters on %s carry different credentials (%s is one "
                                    "of them): Nix's netrc file holds one per host: give them the "
                                    "same, or serve them from different hosts",
                               h, shown);
            seen = true;
          }
      if (seen)
        continue;
      netrc_add(&out, "machine", h);
      netrc_add(&out, " login", user);
      netrc_add(&out, " password", pass);
      {
        char *line = xasprintf("%s\n", out);
        free(out);
        out = line;
      }
      frc_strv_push(&hosts, &nhosts, steal_pointer(&h));
      frc_strv_push(&creds, &ncreds, steal_pointer(&cred));
    }
  if (nhosts > 0)
    *text = steal_pointer(&out);
  return 0;
}

/* Nix's netrc-file for the substituters' credentials, which never go on
 * nix-store's command line (world-readable in /proc/PID/cmdline):
 * <state_dir>/secrets/netrc, mode 0600 in a directory of mode 0700,
 * replaced by a rename when what it must hold changes, removed when no
 * substituter has credentials.  It stays between calls: it holds what the
 * node config (root-only too) already holds, a create killed by its engine
 * leaves no copy elsewhere, and concurrent creates never remove it under
 * each other's nix-store.  *path: NULL without credentials. */
static int
netrc_file(const struct frc_config *c, char **path, frc_error_t *err)
{
  cleanup_free char *text = NULL, *old = NULL;
  cleanup_free char *dir = xasprintf("%s/secrets", c->state_dir);
  cleanup_free char *file = xasprintf("%s/netrc", dir);
  frc_error_t ignored = NULL;
  struct stat st;

  *path = NULL;
  if (frc_store_netrc(c->substituters, &text, err) < 0)
    return -1;
  if (text == NULL)
    {
      if (unlink(file) < 0 && errno != ENOENT && errno != ENOTDIR)
        return frc_error_errno(err, errno, "cannot remove the stale `%s`", file);
      return 0;
    }
  if (frc_mkdir_p(dir, 0700, err) < 0)
    return -1;
  if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
    return frc_error(err, "`%s` is not a directory of flox-runc's user: remove it", dir);
  if ((st.st_mode & 077) != 0 && chmod(dir, 0700) < 0)
    return frc_error_errno(err, errno, "cannot make `%s` private (mode 0700)", dir);
  if (read_file_bounded(file, 1 << 20, &old, NULL, &ignored) < 0 || strcmp(old, text) != 0)
    {
      frc_error_release(&ignored);
      /* mkostemp's 0600 from the start; a crash loses nothing the next call
       * does not write again */
      if (write_file_replace(file, text, strlen(text), 0600, err) < 0)
        return -1;
    }
  *path = steal_pointer(&file);
  return 0;
}

/* argv for nix-store with the store, substituter and key options. */
struct nix_argv
{
  const char *argv[64 + 4096];
  size_t n;
  char *nix_store, *subs, *keys, *cache_env, *netrc;
  char max_jobs[16];
  char *proxy_env[7]; /* the node config's proxies (frc_config_proxy_env) */
  const char *env[9]; /* cache_env, proxy_env: nix-store's extra environment */
};

/* How many paths Nix substitutes at once in a realisation.  Nix 2.8 runs
 * at most max(1, max-jobs) substitutions at a time (PathSubstitutionGoal::
 * tryToRun; later Nix has a separate max-substitution-jobs, 16 by
 * default), so `max-jobs 0` fetched and unpacked the NARs one after
 * another.  Twice the CPUs (decoding xz is CPU-bound, the rest waits on
 * the network and the disk), at least 4, at most 16 (upstream's later
 * default; each running substitution holds a decoder, ~7 MiB of RSS
 * for xz).  docs/performance.md, "Lever: Nix substitution". */
unsigned
frc_store_substitution_jobs(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 2)
    return 4;
  return n >= 8 ? 16 : (unsigned) (2 * n < 4 ? 4 : 2 * n);
}

/* Nix's narinfo cache (<state_dir>/cache/nix/binary-cache-v6.sqlite) keeps
 * each substituter's URL as Nix was given it.  Releases before 91b1c3b gave
 * Nix the URL with its credentials (https://user:token@...), which stayed
 * there at rest, never read again: the cache is removed once (it is only a
 * cache: Nix asks the narinfo again), and a mark beside it says it was.  A
 * stat a nix-store run after that. */
#define NARINFO_PURGED_MARK ".narinfo-cache-purged-v1"
void
frc_store_purge_narinfo_cache(const struct frc_config *c)
{
  static const char *const files[] = { "binary-cache-v6.sqlite", "binary-cache-v6.sqlite-journal",
                                       "binary-cache-v6.sqlite-wal", "binary-cache-v6.sqlite-shm",
                                       NULL };
  cleanup_free char *dir = xasprintf("%s/cache", c->state_dir);
  cleanup_free char *mark = xasprintf("%s/" NARINFO_PURGED_MARK, dir);
  frc_error_t ignored = NULL;
  bool all = true;

  if (access(mark, F_OK) == 0)
    return;
  for (const char *const *f = files; *f; f++)
    {
      cleanup_free char *path = xasprintf("%s/nix/%s", dir, *f);
      if (unlink(path) < 0 && errno != ENOENT)
        all = false;
    }
  if (!all)
    return; /* tried again at the next run */
  if (frc_mkdir_p(dir, 0700, &ignored) < 0)
    {
      frc_error_release(&ignored);
      return;
    }
  {
    int fd = open(mark, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0)
      close(fd);
  }
}

/* jobs: the max-jobs Nix gets; 0 everywhere but in a realisation, where it
 * only lets substitutions run side by side: the paths realised are never
 * derivations (frc_store_realise refuses them), so nothing is built. */
static int
nix_argv_init(struct nix_argv *a, const struct frc_store *s, unsigned jobs, frc_error_t *err)
{
  const struct frc_config *c = s->config;
  memset(a, 0, sizeof(*a));
  a->nix_store = frc_nix_store_find();
  if (a->nix_store == NULL)
    return frc_error(err, "cannot find the node's nix-store: install Nix on the node (Debian: "
                          "apt-get install nix-bin)");
  /* The URLs without their credentials: those go through the netrc file. */
  {
    size_t n = 0;
    cleanup_strv char **bare = xmalloc0(sizeof(char *));
    for (char **p = c->substituters; p && *p; p++)
      frc_strv_push(&bare, &n, frc_url_redact(*p));
    a->subs = join(bare, " ");
  }
  if (netrc_file(c, &a->netrc, err) < 0)
    return -1;
  a->keys = join(c->trusted_public_keys, " ");
  /* Nix's narinfo cache goes under flox-runc's state, not $HOME. */
  frc_store_purge_narinfo_cache(c);
  a->cache_env = xasprintf("XDG_CACHE_HOME=%s/cache", c->state_dir);
  /* Nix's curl reads the proxy variables: the node config's go to it. */
  frc_config_proxy_env(c, a->proxy_env);
  a->env[0] = a->cache_env;
  for (size_t i = 0; a->proxy_env[i]; i++)
    a->env[i + 1] = a->proxy_env[i];
  a->argv[a->n++] = a->nix_store;
  if (!is_root_store(c))
    {
      a->argv[a->n++] = "--store";
      a->argv[a->n++] = c->store_root;
    }
  a->argv[a->n++] = "--option";
  a->argv[a->n++] = "substituters";
  a->argv[a->n++] = a->subs;
  a->argv[a->n++] = "--option";
  a->argv[a->n++] = "trusted-public-keys";
  a->argv[a->n++] = a->keys;
  a->argv[a->n++] = "--option";
  a->argv[a->n++] = "require-sigs";
  a->argv[a->n++] = "true";
  if (a->netrc)
    {
      a->argv[a->n++] = "--option";
      a->argv[a->n++] = "netrc-file";
      a->argv[a->n++] = a->netrc;
    }
  a->argv[a->n++] = "--option";
  a->argv[a->n++] = "max-jobs";
  snprintf(a->max_jobs, sizeof(a->max_jobs), "%u", jobs);
  a->argv[a->n++] = a->max_jobs;
  return 0;
}

static void
nix_argv_release(struct nix_argv *a)
{
  free(a->nix_store);
  free(a->subs);
  free(a->keys);
  free(a->cache_env);
  free(a->netrc);
  for (size_t i = 0; a->proxy_env[i]; i++)
    free(a->proxy_env[i]);
}

static int
add_paths(struct nix_argv *a, char *const *paths, frc_error_t *err)
{
  for (; paths && *paths; paths++)
    {
      if (a->n + 2 >= sizeof(a->argv) / sizeof(a->argv[0]))
        return frc_error(err, "the environment has more than 4096 store paths");
      if (!frc_store_path_valid(*paths))
        return frc_error(err, "refusing the invalid store path \"%s\"", *paths);
      a->argv[a->n++] = *paths;
    }
  a->argv[a->n] = NULL;
  return 0;
}

/* Nix's own account of a failure: its last `error:` line other than the
 * generic "build of ... failed", else the last download error it only warned
 * about before giving up (a substituter answering HTTP 500 on
 * nix-cache-info makes Nix skip it with a warning and then report "don't
 * know how to build"), else "build of ... failed". */
struct nix_errors
{
  char *error;
  char *download;
  char *build;
};

static void
nix_errors_release(struct nix_errors *e)
{
  free(e->error);
  free(e->download);
  free(e->build);
}

static void
keep(char **slot, const char *line)
{
  free(*slot);
  *slot = xstrdup(line);
}

static void
note_nix_error(struct nix_errors *e, const char *line)
{
  while (*line == ' ' || *line == '\t')
    line++;
  if (str_has_prefix(line, "error: build of ") || str_has_prefix(line, "error: some substitutes"))
    keep(&e->build, line);
  else if (str_has_prefix(line, "error: "))
    keep(&e->error, line);
  else if (str_has_prefix(line, "warning: error: unable to download "))
    keep(&e->download, line + strlen("warning: "));
  else if (str_has_prefix(line, "warning: unable to download "))
    {
      cleanup_free char *l = xasprintf("error: %s", line + strlen("warning: "));
      keep(&e->download, l);
    }
}

static const char *
nix_error_line(const struct nix_errors *e)
{
  return e->error ? e->error : e->download ? e->download : e->build;
}

struct progress
{
  const struct frc_store *s;
  unsigned copied;
  struct nix_errors errs;
  void (*on_copy)(void *); /* frc_store_realise_on_copy */
  void *copy_data;
};

static void
progress_release(struct progress *p)
{
  nix_errors_release(&p->errs);
}

static void
on_nix_line(const char *raw, void *data)
{
  struct progress *p = data;
  /* Nix names the URLs it fetched: never a credential in the log or an error */
  cleanup_free char *line = frc_url_mask_text(raw);
  note_nix_error(&p->errs, line);
  if (str_has_prefix(line, "copying path "))
    {
      p->copied++;
      frc_log(p->s->log, FRC_LOG_INFO, "flox-runc: nix: [%u] %s", p->copied, line);
      if (p->on_copy)
        p->on_copy(p->copy_data);
    }
  else if (str_has_prefix(line, "these ") && strstr(line, " will be fetched"))
    frc_log(p->s->log, FRC_LOG_INFO, "flox-runc: nix: %s", line); /* paths and bytes */
  else
    frc_log(p->s->log, FRC_LOG_DEBUG, "flox-runc: nix: %s", line);
}

static int
nix_failed(const struct frc_store *s, const char *what, const struct frc_proc_result *r,
           const struct nix_errors *e, char *const *paths, frc_error_t *err)
{
  cleanup_strv char **shown = xmalloc0(sizeof(char *));
  cleanup_free char *subs = NULL;
  cleanup_free char *last_err = frc_url_mask_text(r->last_err);
  cleanup_free char *detail = escape_for_message(last_err, strlen(last_err), 600);
  const char *line = nix_error_line(e);
  cleanup_free char *nix = line ? escape_for_message(line, strlen(line), 600) : NULL;
  size_t n = 0;
  for (char **p = s->config->substituters; p && *p; p++)
    frc_strv_push(&shown, &n, frc_url_mask(*p));
  subs = join(shown, ", ");
  if (r->timed_out)
    {
      frc_error(err, "%s did not finish before the deadline (deadline_seconds=%ld); what was "
                     "realised stays in the store for the retry",
                what, s->config->deadline_seconds);
      return frc_error_code(err, FRC_ECODE_DEADLINE);
    }
  if (strstr(r->last_err, "lacks a valid signature") || strstr(r->last_err, "is not signed by any of the keys"))
    return frc_error(err, "%s: a substituted path lacks a valid signature from the node's "
                          "trusted_public_keys (substituters tried: %s): %s",
                     what, subs, detail);
  /* A substituter that failed (HTTP 5xx, refused, truncated): Nix's own
   * line says which URL and how. */
  if ((e->error && strstr(e->error, "unable to download")) || e->download)
    return frc_error(err, "%s: a substituter failed (tried: %s): Nix says \"%s\": check that the "
                          "binary cache is up and reachable from the node, or fix `substituters`",
                     what, subs, nix);
  if (strstr(r->last_err, "don't know how to build") || strstr(r->last_err, "no substituter")
      || strstr(r->last_err, "does not exist") || strstr(r->last_err, "cannot be created"))
    {
      const char *missing = NULL;
      for (char *const *p = paths; p && *p && missing == NULL; p++)
        if (strstr(r->last_err, *p))
          missing = *p;
      return frc_error(err, "%s: %s is not available from any substituter (tried: %s): publish it "
                            "to a binary cache or add one to `substituters`",
                       what, missing ? missing : "a store path", subs);
    }
  if (nix && strstr(last_err, line) == NULL)
    return frc_error(err, "%s failed (nix-store exit %d): Nix says \"%s\"; its last output: %s", what,
                     r->status, nix, detail);
  return frc_error(err, "%s failed (nix-store exit %d): %s", what, r->status, detail);
}

/* A nix-store run in the background (a realisation, a closure query): its
 * argv and environment, the progress it reports, the process. */
struct nix_run
{
  const struct frc_store *s;
  char *const *paths;
  struct nix_argv a;
  struct progress prog;
  struct frc_proc p;
  struct frc_proc_running *run;
};

static void
nix_run_release(struct nix_run *r)
{
  nix_argv_release(&r->a);
  progress_release(&r->prog);
}

/* r's argv with the store's options (jobs: nix_argv_init's). */
static int
nix_run_init(struct nix_run *r, const struct frc_store *s, char *const *paths, unsigned jobs,
             frc_error_t *err)
{
  r->s = s;
  r->paths = paths;
  r->prog.s = s;
  return nix_argv_init(&r->a, s, jobs, err);
}

/* Starts r, once its argv is complete. */
static int
nix_run_start(struct nix_run *r, bool capture_stdout, frc_error_t *err)
{
  r->p.argv = r->a.argv;
  r->p.extra_env = r->a.env;
  r->p.deadline_ns = r->s->deadline_ns;
  r->p.on_stderr_line = on_nix_line;
  r->p.cb_data = &r->prog;
  r->p.capture_stdout = capture_stdout;
  return frc_proc_start(&r->p, &r->run, err);
}

/* Waits for r; its failure as Nix said it (what: what it was doing). */
static int
nix_run_finish(struct nix_run *r, const char *what, struct frc_proc_result *res, frc_error_t *err)
{
  frc_proc_finish(r->run, res);
  if (res->status != 0 || res->timed_out)
    return nix_failed(r->s, what, res, &r->prog.errs, r->paths, err);
  return 0;
}

/* A realisation running (frc_store_realise_start), or a nix-store started
 * before its paths were known (frc_store_early_start): `nix-store --serve
 * --write`, which waits on its stdin with its store open until it is handed
 * the paths. */
struct frc_store_realising
{
  struct nix_run run;
  size_t npaths;
  bool serve;
  bool warm_up; /* serve: the warm-up query was asked first (its answer precedes) */
  int in_fd; /* serve: nix-store's stdin (O_NONBLOCK), -1 once written */
  struct frc_store s; /* serve: what run.s points to */
};

static void
realising_free(struct frc_store_realising *r)
{
  if (r->serve && r->in_fd >= 0)
    close(r->in_fd);
  nix_run_release(&r->run);
  free(r);
}

static void
realising_freep(struct frc_store_realising **r)
{
  if (*r)
    realising_free(*r);
}

/* What a realisation refuses before any nix-store runs. */
static int
check_realisable(char *const *paths, size_t *n, frc_error_t *err)
{
  *n = 0;
  for (char *const *q = paths; q && *q; q++, (*n)++)
    {
      /* nix-store --realise builds a .drv, and max-jobs > 0 would let it:
       * an environment names outputs, and nothing is built on the node. */
      size_t len = strlen(*q);
      if (len > 4 && strcmp(*q + len - 4, ".drv") == 0)
        return frc_error(err, "refusing to realise the derivation \"%s\": an environment names "
                              "the store paths of outputs, which are substituted, never built on "
                              "the node",
                         *q);
      if (!frc_store_path_valid(*q))
        return frc_error(err, "refusing the invalid store path \"%s\"", *q);
    }
  if (*n > 4096)
    return frc_error(err, "the environment has more than 4096 store paths");
  return 0;
}

/* Nix's serve protocol (Nix 2.8 src/libstore/serve-protocol.hh): 64-bit
 * little-endian numbers, strings as their length and bytes padded to 8. */
#define SERVE_MAGIC_1 0x390c9debULL
#define SERVE_MAGIC_2 0x5452eecbULL
#define SERVE_VERSION ((2 << 8) | 7)
#define SERVE_CMD_QUERY_VALID_PATHS 1
/* Asked first, before the real paths are known: a path no cache has, so
 * that Nix sets its substituters up (its narinfo cache, each one's
 * nix-cache-info) while the caller waits. */
/* The nice value of a nix-store started beside the fetch until it is
 * handed the paths. */
#define EARLY_NICE 10
#define SERVE_WARM_UP_PATH "/nix/store/00000000000000000000000000000000-flox-runc-warm-up"

static void
put_u64(char **p, unsigned long long v)
{
  for (int i = 0; i < 8; i++)
    *(*p)++ = (char) ((v >> (8 * i)) & 0xff);
}

static bool
get_u64(const char **p, const char *end, unsigned long long *v)
{
  if (end - *p < 8)
    return false;
  *v = 0;
  for (int i = 0; i < 8; i++)
    *v |= (unsigned long long) (unsigned char) (*p)[i] << (8 * i);
  *p += 8;
  return true;
}

/* The greeting and one cmdQueryValidPaths (no temporary roots: the
 * caller's GC roots are set; substitute): Nix substitutes what is missing
 * (store->substitutePaths, as --realise does) and answers which paths are
 * valid then. */
static char *
serve_request(bool greeting, char *const *paths, size_t n, size_t *len)
{
  size_t size = (greeting ? 6 : 4) * 8;
  for (size_t i = 0; i < n; i++)
    size += 8 + ((strlen(paths[i]) + 7) & ~(size_t) 7);
  char *buf = xmalloc0(size), *p = buf;
  if (greeting)
    {
      put_u64(&p, SERVE_MAGIC_1);
      put_u64(&p, SERVE_VERSION);
    }
  put_u64(&p, SERVE_CMD_QUERY_VALID_PATHS);
  put_u64(&p, 0); /* lock */
  put_u64(&p, 1); /* substitute */
  put_u64(&p, n);
  for (size_t i = 0; i < n; i++)
    {
      size_t l = strlen(paths[i]);
      put_u64(&p, l);
      memcpy(p, paths[i], l);
      p += (l + 7) & ~(size_t) 7;
    }
  *len = size;
  return buf;
}

static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Whether nix-store --serve's answer (bounded by frc_proc) says that every
 * one of the n paths (distinct) is valid: its greeting, the warm-up's
 * answer when it was asked, then a set of paths, each one of those asked
 * for, once. */
static bool
serve_all_valid(const char *out, size_t len, char *const *paths, size_t n, bool warm_up)
{
  const char *p = out, *end = out + len;
  unsigned long long v, count;
  cleanup_free char **sorted = xmalloc0((n + 1) * sizeof(char *));
  cleanup_free bool *seen = xmalloc0((n + 1) * sizeof(bool));

  if (!get_u64(&p, end, &v) || v != SERVE_MAGIC_2 || !get_u64(&p, end, &v) || (v & 0xff00) != (2 << 8)
      || (warm_up && (!get_u64(&p, end, &count) || count > 1)))
    return false;
  if (warm_up && count == 1) /* the warm-up's answer: skipped */
    {
      if (!get_u64(&p, end, &v) || v > 4096 || (unsigned long long) (end - p) < ((v + 7) & ~7ULL))
        return false;
      p += (v + 7) & ~7ULL;
    }
  if (!get_u64(&p, end, &count) || count != n)
    return false;
  memcpy(sorted, paths, n * sizeof(char *));
  qsort(sorted, n, sizeof(char *), cmp_str);
  for (unsigned long long i = 0; i < count; i++)
    {
      char name[4097];
      unsigned long long l;
      char *key = name, **hit;
      if (!get_u64(&p, end, &l) || l == 0 || l >= sizeof(name) || (unsigned long long) (end - p) < ((l + 7) & ~7ULL))
        return false;
      memcpy(name, p, l);
      name[l] = '\0';
      p += (l + 7) & ~7ULL;
      hit = bsearch(&key, sorted, n, sizeof(char *), cmp_str);
      if (hit == NULL || seen[hit - sorted])
        return false;
      seen[hit - sorted] = true;
    }
  return p == end;
}

/* Writes req to the early nix-store (last: then its stdin ends): false
 * when it cannot take it (it died, or did not read it before the deadline). */
static bool
serve_write(struct frc_store_realising *r, const char *req, size_t len, bool last)
{
  size_t off = 0;

  while (off < len)
    {
      ssize_t w = write(r->in_fd, req + off, len - off);
      if (w > 0)
        {
          off += (size_t) w;
          continue;
        }
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && errno == EAGAIN)
        {
          struct pollfd pfd = { r->in_fd, POLLOUT, 0 };
          long long left = r->s.deadline_ns ? (r->s.deadline_ns - frc_now_ns()) / 1000000LL : 1000;
          if (left <= 0 || (poll(&pfd, 1, left > 1000 ? 1000 : (int) left) < 0 && errno != EINTR))
            return false;
          continue;
        }
      return false; /* EPIPE: it is gone */
    }
  if (last)
    {
      close(r->in_fd);
      r->in_fd = -1;
    }
  return true;
}

/* `nix-store --serve --write` started, its stdin a pipe that serve_write
 * writes. */
static int
serve_spawn(const struct frc_store *s, struct frc_store_realising **out, frc_error_t *err)
{
  struct frc_store_realising *r __attribute__((cleanup(realising_freep))) = xmalloc0(sizeof(*r));
  int in[2];

  *out = NULL;
  r->serve = true;
  r->in_fd = -1;
  r->s = *s;
  if (nix_run_init(&r->run, &r->s, NULL, frc_store_substitution_jobs(), err) < 0)
    return -1;
  r->run.a.argv[r->run.a.n++] = "--serve";
  r->run.a.argv[r->run.a.n++] = "--write";
  r->run.a.argv[r->run.a.n] = NULL;
  if (pipe2(in, O_CLOEXEC) < 0)
    return frc_error_errno(err, errno, "cannot create a pipe");
  r->in_fd = in[1];
  r->run.p.stdin_fd = in[0];
  if (fcntl(in[1], F_SETFL, O_NONBLOCK) < 0)
    {
      int e = errno;
      close(in[0]);
      return frc_error_errno(err, e, "cannot set up nix-store's stdin");
    }
  if (nix_run_start(&r->run, true, err) < 0)
    {
      close(in[0]);
      return -1;
    }
  close(in[0]);
  r->run.p.stdin_fd = 0;
  *out = steal_pointer(&r);
  return 0;
}

int
frc_store_early_start(const struct frc_store *s, struct frc_store_early **out, frc_error_t *err)
{
  struct frc_store_realising *r __attribute__((cleanup(realising_freep))) = NULL;

  *out = NULL;
  if (serve_spawn(s, &r, err) < 0)
    return -1;
  r->warm_up = true;
  /* Its start and warm-up have until FloxHub answers: niced meanwhile, so
   * the fetch child (the critical path) gets the CPU first; back to 0 when
   * it is handed the paths (PRIO_PGRP: every thread of its group). */
  if (setpriority(PRIO_PGRP, (id_t) frc_proc_pid(r->run.run), EARLY_NICE) < 0)
    frc_log(s->log, FRC_LOG_DEBUG, "flox-runc: cannot nice the early nix-store: %s", strerror(errno));
  {
    size_t len;
    cleanup_free char *req = serve_request(true, (char *[]) { (char *) SERVE_WARM_UP_PATH }, 1, &len);
    if (!serve_write(r, req, len, false))
      {
        frc_error(err, "`%s --serve` did not take its first request", r->run.a.nix_store);
        frc_store_realise_abort(steal_pointer(&r));
        return -1;
      }
  }
  frc_log(s->log, FRC_LOG_DEBUG, "flox-runc: %s started before its paths are known", r->run.a.nix_store);
  *out = (struct frc_store_early *) steal_pointer(&r);
  return 0;
}

void
frc_store_early_abort(struct frc_store_early *e)
{
  frc_store_realise_abort((struct frc_store_realising *) e);
}

int
frc_store_realise_start_early(const struct frc_store *s, struct frc_store_early **early,
                              char *const *paths, struct frc_store_realising **out,
                              frc_error_t *err)
{
  struct frc_store_realising *r __attribute__((cleanup(realising_freep))) = NULL;
  size_t n;

  *out = NULL;
  if (check_realisable(paths, &n, err) < 0)
    return -1;
  if (early && *early)
    {
      size_t len;
      cleanup_free char *req = serve_request(false, paths, n, &len);
      r = (struct frc_store_realising *) steal_pointer(early);
      (void) setpriority(PRIO_PGRP, (id_t) frc_proc_pid(r->run.run), 0);
      if (serve_write(r, req, len, true))
        {
          r->run.paths = paths;
          r->npaths = n;
          frc_log(s->log, FRC_LOG_INFO,
                  "flox-runc: realising %zu store paths with %s (started while FloxHub answered)", n,
                  r->run.a.nix_store);
          *out = steal_pointer(&r);
          return 0;
        }
      frc_log(s->log, FRC_LOG_DEBUG, "flox-runc: the early nix-store did not take the paths: a new one");
      frc_store_realise_abort(steal_pointer(&r));
    }
  else if (early)
    {
      /* nix-store --serve with the paths at once: its answer comes before
       * its exit (frc_store_realise_answered) */
      size_t len;
      cleanup_free char *req = serve_request(true, paths, n, &len);
      if (serve_spawn(s, &r, err) < 0)
        return -1;
      if (serve_write(r, req, len, true))
        {
          r->run.paths = paths;
          r->npaths = n;
          frc_log(s->log, FRC_LOG_INFO, "flox-runc: realising %zu store paths with %s --serve", n,
                  r->run.a.nix_store);
          *out = steal_pointer(&r);
          return 0;
        }
      frc_log(s->log, FRC_LOG_DEBUG, "flox-runc: nix-store --serve did not take the paths: --realise");
      frc_store_realise_abort(steal_pointer(&r));
    }
  r = xmalloc0(sizeof(*r));
  r->in_fd = -1;
  if (nix_run_init(&r->run, s, paths, frc_store_substitution_jobs(), err) < 0)
    return -1;
  r->run.a.argv[r->run.a.n++] = "--realise";
  if (add_paths(&r->run.a, paths, err) < 0)
    return -1;
  r->npaths = n;
  frc_log(s->log, FRC_LOG_INFO, "flox-runc: realising %zu store paths with %s", r->npaths,
          r->run.a.nix_store);
  if (nix_run_start(&r->run, false, err) < 0)
    return -1;
  *out = steal_pointer(&r);
  return 0;
}

int
frc_store_realise_start(const struct frc_store *s, char *const *paths,
                        struct frc_store_realising **out, frc_error_t *err)
{
  return frc_store_realise_start_early(s, NULL, paths, out, err);
}

static void
log_realised(const struct frc_store_realising *r)
{
  frc_log(r->run.s->log, FRC_LOG_INFO, "flox-runc: realised %zu store paths (%u substituted)",
          r->npaths, r->run.prog.copied);
}

/* The early nix-store's end: every path valid, or its answer is not
 * trusted to say why one is not (Nix --serve turns a substitution's error
 * into a warning): then `nix-store --realise` of the same paths, whose
 * failure is reported as Nix says it (what is valid already is not
 * fetched again). */
static int
serve_finish(struct frc_store_realising *r, frc_error_t *err)
{
  cleanup_proc_result struct frc_proc_result res = { 0 };
  struct frc_store s = r->s;
  struct frc_store_realising *again;

  frc_proc_finish(r->run.run, &res);
  if (res.timed_out)
    return nix_failed(&r->s, "realising the environment's packages", &res, &r->run.prog.errs,
                      r->run.paths, err);
  if (res.status == 0 && serve_all_valid(res.out, res.out_len, r->run.paths, r->npaths, r->warm_up))
    {
      log_realised(r);
      return 0;
    }
  frc_log(s.log, FRC_LOG_DEBUG,
          "flox-runc: nix-store --serve (exit %d) left paths unrealised: nix-store --realise says why",
          res.status);
  if (frc_store_realise_start(&s, r->run.paths, &again, err) < 0)
    return -1;
  frc_store_realise_on_copy(again, r->run.prog.on_copy, r->run.prog.copy_data);
  return frc_store_realise_finish(again, err);
}

int
frc_store_realise_finish(struct frc_store_realising *r, frc_error_t *err)
{
  cleanup_proc_result struct frc_proc_result res = { 0 };
  int rc;

  if (r->serve)
    {
      rc = serve_finish(r, err);
      realising_free(r);
      return rc;
    }
  rc = nix_run_finish(&r->run, "realising the environment's packages", &res, err);
  if (rc == 0)
    log_realised(r);
  realising_free(r);
  return rc;
}

static bool
serve_answered(const char *out, size_t len, void *data)
{
  struct frc_store_realising *r = data;
  return serve_all_valid(out, len, r->run.paths, r->npaths, r->warm_up);
}

int
frc_store_realise_answered(struct frc_store_realising **rp, frc_error_t *err)
{
  struct frc_store_realising *r = *rp;

  if (r->serve && frc_proc_wait_stdout(r->run.run, serve_answered, r) == 1)
    {
      log_realised(r);
      return 0; /* *rp: the nix-store exiting */
    }
  *rp = NULL;
  return frc_store_realise_finish(r, err);
}

void
frc_store_realise_reap(struct frc_store_realising *r)
{
  cleanup_proc_result struct frc_proc_result res = { 0 };
  if (r == NULL)
    return;
  frc_proc_finish(r->run.run, &res);
  if (res.status != 0)
    frc_log(r->s.log, FRC_LOG_DEBUG, "flox-runc: %s exited %d after its answer%s", r->run.a.nix_store,
            res.status, res.timed_out ? " (the deadline)" : "");
  realising_free(r);
}

void
frc_store_realise_on_copy(struct frc_store_realising *r, void (*cb)(void *), void *data)
{
  r->run.prog.on_copy = cb;
  r->run.prog.copy_data = data;
}

void
frc_store_realise_abort(struct frc_store_realising *r)
{
  if (r == NULL)
    return;
  frc_proc_abort(r->run.run);
  realising_free(r);
}

int
frc_store_realise(const struct frc_store *s, char *const *paths, frc_error_t *err)
{
  struct frc_store_realising *r;
  if (frc_store_realise_start(s, paths, &r, err) < 0)
    return -1;
  return frc_store_realise_finish(r, err);
}

static int
run_query(const struct frc_store *s, struct nix_argv *a, const char *what, char *const *paths,
          struct frc_proc_result *r, frc_error_t *err)
{
  const char *const *env = a->env;
  struct progress prog __attribute__((cleanup(progress_release))) = { .s = s };
  struct frc_proc p = { .argv = a->argv, .extra_env = env, .deadline_ns = s->deadline_ns,
                        .on_stderr_line = on_nix_line, .cb_data = &prog, .capture_stdout = 1 };
  if (frc_proc_run(&p, r, err) < 0)
    return -1;
  if (r->status != 0 || r->timed_out)
    return nix_failed(s, what, r, &prog.errs, paths, err);
  return 0;
}

static char **
split_lines(const char *text, size_t *n_out)
{
  size_t n = 0;
  char **v = xmalloc0(sizeof(char *));
  for (const char *p = text; *p;)
    {
      const char *e = strchr(p, '\n');
      size_t len = e ? (size_t) (e - p) : strlen(p);
      if (len > 0)
        {
          frc_strv_push(&v, &n, xstrndup(p, len));
        }
      p += len + (e != NULL);
    }
  if (n_out)
    *n_out = n;
  return v;
}

/* A closure query running (frc_store_closure_start). */
struct frc_store_query
{
  struct nix_run run;
};

static void
query_free(struct frc_store_query *q)
{
  nix_run_release(&q->run);
  free(q);
}

static void
query_freep(struct frc_store_query **q)
{
  if (*q)
    query_free(*q);
}

int
frc_store_closure_start(const struct frc_store *s, char *const *paths, struct frc_store_query **out,
                        frc_error_t *err)
{
  struct frc_store_query *q __attribute__((cleanup(query_freep))) = xmalloc0(sizeof(*q));

  *out = NULL;
  if (nix_run_init(&q->run, s, paths, 0, err) < 0)
    return -1;
  q->run.a.argv[q->run.a.n++] = "--query";
  q->run.a.argv[q->run.a.n++] = "--requisites";
  if (add_paths(&q->run.a, paths, err) < 0 || nix_run_start(&q->run, true, err) < 0)
    return -1;
  *out = steal_pointer(&q);
  return 0;
}

int
frc_store_closure_finish(struct frc_store_query *q, char ***closure, frc_error_t *err)
{
  cleanup_proc_result struct frc_proc_result r = { 0 };
  int rc = nix_run_finish(&q->run, "querying the environment's closure", &r, err);
  char **v;

  query_free(q);
  if (rc < 0)
    return -1;
  v = split_lines(r.out, NULL);
  for (char **p = v; *p; p++)
    if (!frc_store_path_valid(*p))
      {
        frc_strv_freep(&v);
        return frc_error(err, "nix-store printed an unexpected closure entry");
      }
  *closure = v;
  return 0;
}

void
frc_store_closure_abort(struct frc_store_query *q)
{
  if (q == NULL)
    return;
  frc_proc_abort(q->run.run);
  query_free(q);
}

int
frc_store_closure(const struct frc_store *s, char *const *paths, char ***closure, frc_error_t *err)
{
  struct frc_store_query *q;
  if (frc_store_closure_start(s, paths, &q, err) < 0)
    return -1;
  return frc_store_closure_finish(q, closure, err);
}

/* Nix's database opened by frc_store_closure_db, and its statement: closed
 * when it goes out of scope. */
struct nix_db
{
  const struct frc_sqlite_api *q;
  sqlite3 *h;
  sqlite3_stmt *st;
};

static void
nix_db_close(struct nix_db *d)
{
  if (d->st)
    d->q->sqlite3_finalize(d->st);
  if (d->h)
    d->q->sqlite3_close(d->h);
  d->st = NULL, d->h = NULL;
}

/* Nix's database opened and the closure's statement prepared
 * (frc_store_closure_db_prepare); nothing is read until _read steps it. */
struct frc_store_closure_dbq
{
  struct nix_db d;
  char *db;
  size_t want;
};

void
frc_store_closure_db_free(struct frc_store_closure_dbq *q)
{
  if (q == NULL)
    return;
  nix_db_close(&q->d);
  free(q->db);
  free(q);
}

int
frc_store_closure_db_prepare(const struct frc_config *c, char *const *paths,
                             struct frc_store_closure_dbq **out, frc_error_t *err)
{
  struct frc_store_closure_dbq *q = xmalloc0(sizeof(*q));
  const struct frc_sqlite_api *api;
  cleanup_buf struct frc_buf sql = { 0 };
  cleanup_free char *query = NULL;

  *out = NULL;
  q->d.q = api = frc_dl_sqlite(err);
  q->db = xasprintf("%s/nix/var/nix/db/db.sqlite", is_root_store(c) ? "" : c->store_root);
  if (api == NULL)
    goto fail;
  /* the paths inline: store paths (validated: no quote can be in one) */
  for (char *const *p = paths; p && *p; p++, q->want++)
    {
      if (!frc_store_path_valid(*p))
        {
          frc_error(err, "`%s` is not a store path", *p);
          goto fail;
        }
      frc_buf_addf(&sql, "%s'%s'", sql.len ? "," : "", *p);
    }
  if (q->want == 0)
    {
      *out = q;
      return 0;
    }
  /* the closure over Refs (what `nix-store -qR` answers), and which of
   * the paths themselves are valid (all must be) */
  query = xasprintf(
      "WITH RECURSIVE r(id) AS (SELECT id FROM ValidPaths WHERE path IN (%s)), "
      "c(id) AS (SELECT id FROM r UNION SELECT reference FROM Refs JOIN c ON referrer = c.id) "
      "SELECT path, id IN (SELECT id FROM r) FROM ValidPaths WHERE id IN (SELECT id FROM c)",
      sql.data);
  if (api->sqlite3_open_v2(q->db, &q->d.h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    {
      frc_error(err, "cannot open Nix's database `%s`: %s", q->db,
                q->d.h ? api->sqlite3_errmsg(q->d.h) : "");
      goto fail;
    }
  api->sqlite3_busy_timeout(q->d.h, 2000);
  if (api->sqlite3_prepare_v2(q->d.h, query, -1, &q->d.st, NULL) != SQLITE_OK)
    {
      frc_error(err, "cannot query Nix's database `%s`: %s", q->db, api->sqlite3_errmsg(q->d.h));
      goto fail;
    }
  *out = q;
  return 0;
fail:
  frc_store_closure_db_free(q);
  return -1;
}

int
frc_store_closure_db_read(struct frc_store_closure_dbq *q, char ***closure, frc_error_t *err)
{
  const struct frc_sqlite_api *api = q->d.q;
  cleanup_strv char **out = xmalloc0(sizeof(char *));
  size_t n = 0, found_roots = 0;
  int rc = 0;

  /* the read transaction begins here: what Nix committed until now */
  while (q->want > 0 && (rc = api->sqlite3_step(q->d.st)) == SQLITE_ROW)
    {
      const char *path = (const char *) api->sqlite3_column_text(q->d.st, 0);
      const char *root = (const char *) api->sqlite3_column_text(q->d.st, 1);
      if (path == NULL || !frc_store_path_valid(path))
        {
          frc_error(err, "Nix's database `%s` holds an unexpected path", q->db);
          goto fail;
        }
      found_roots += root && root[0] == '1';
      frc_strv_push(&out, &n, xstrdup(path));
    }
  if (q->want > 0 && rc != SQLITE_DONE)
    {
      frc_error(err, "cannot read Nix's database `%s`: %s", q->db, api->sqlite3_errmsg(q->d.h));
      goto fail;
    }
  if (found_roots != q->want)
    {
      frc_error(err, "Nix's database `%s` lacks %zu of the paths", q->db, q->want - found_roots);
      goto fail;
    }
  frc_store_closure_db_free(q);
  *closure = steal_pointer(&out);
  return 0;
fail:
  frc_store_closure_db_free(q);
  return -1;
}

int
frc_store_valid_db(const struct frc_config *c, char *const *paths, bool *valid, frc_error_t *err)
{
  struct nix_db d __attribute__((cleanup(nix_db_close))) = { 0 };
  cleanup_buf struct frc_buf sql = { 0 };
  cleanup_free char *db = xasprintf("%s/nix/var/nix/db/db.sqlite", is_root_store(c) ? "" : c->store_root);
  cleanup_free char *query = NULL;
  size_t n = 0;
  int rc;

  for (char *const *p = paths; p && *p; p++, n++)
    {
      valid[n] = false;
      if (!frc_store_path_valid(*p))
        return frc_error(err, "`%s` is not a store path", *p);
      frc_buf_addf(&sql, "%s'%s'", sql.len ? "," : "", *p); /* validated: no quote */
    }
  if (n == 0)
    return 0;
  if ((d.q = frc_dl_sqlite(err)) == NULL)
    return -1;
  query = xasprintf("SELECT path FROM ValidPaths WHERE path IN (%s)", sql.data);
  if (d.q->sqlite3_open_v2(db, &d.h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK
      || (d.q->sqlite3_busy_timeout(d.h, 20), d.q->sqlite3_prepare_v2(d.h, query, -1, &d.st, NULL))
             != SQLITE_OK)
    return frc_error(err, "cannot query Nix's database `%s`: %s", db, d.h ? d.q->sqlite3_errmsg(d.h) : "");
  while ((rc = d.q->sqlite3_step(d.st)) == SQLITE_ROW)
    {
      const char *path = (const char *) d.q->sqlite3_column_text(d.st, 0);
      for (size_t i = 0; path && i < n; i++)
        valid[i] = valid[i] || strcmp(paths[i], path) == 0;
    }
  if (rc != SQLITE_DONE)
    return frc_error(err, "cannot read Nix's database `%s`: %s", db, d.q->sqlite3_errmsg(d.h));
  return 0;
}

int
frc_store_closure_db(const struct frc_config *c, char *const *paths, char ***closure, frc_error_t *err)
{
  struct frc_store_closure_dbq *q;
  if (frc_store_closure_db_prepare(c, paths, &q, err) < 0)
    return -1;
  return frc_store_closure_db_read(q, closure, err);
}

int
frc_store_add(const struct frc_store *s, const char *dir, char **path, frc_error_t *err)
{
  struct nix_argv a __attribute__((cleanup(nix_argv_release)));
  cleanup_proc_result struct frc_proc_result r = { 0 };
  cleanup_strv char **v = NULL;
  char *const what[] = { (char *) dir, NULL };
  size_t n = 0;

  if (nix_argv_init(&a, s, 0, err) < 0)
    return -1;
  a.argv[a.n++] = "--add";
  a.argv[a.n++] = dir;
  a.argv[a.n] = NULL;
  if (run_query(s, &a, "adding to the node's store", what, &r, err) < 0)
    return -1;
  v = split_lines(r.out, &n);
  if (n != 1 || !frc_store_path_valid(v[0]))
    return frc_error(err, "nix-store --add printed no store path");
  *path = xstrdup(v[0]);
  return 0;
}

int
frc_store_db_template(const struct frc_store *s, char *const *paths, const char *root, frc_error_t *err)
{
  struct nix_argv a __attribute__((cleanup(nix_argv_release)));
  cleanup_proc_result struct frc_proc_result r = { 0 };
  cleanup_proc_result struct frc_proc_result r2 = { 0 };
  struct progress prog __attribute__((cleanup(progress_release))) = { .s = s };
  cleanup_free char *dump = xasprintf("%s/dump", root);
  cleanup_free char *store = xasprintf("local?root=%s", root);
  const char *argv[] = { NULL, "--store", store, "--load-db", NULL };
  const char *env[] = { NULL, NULL };
  struct frc_proc p = { 0 };

  if (strpbrk(root, "?&=%#"))
    return frc_error(err, "state_dir must not contain '?', '&', '=', '%%' or '#' for a Nix "
                          "database in a writable /nix");
  if (nix_argv_init(&a, s, 0, err) < 0)
    return -1;
  /* The registrations of exactly these paths (not their closure: the
   * caller gives the closure), read from the node's database. */
  a.argv[a.n++] = "--dump-db";
  if (add_paths(&a, paths, err) < 0)
    return -1;
  /* Without paths --dump-db would dump every path of the node. */
  if (paths && paths[0]
      && run_query(s, &a, "reading the closure's registrations from the node's Nix database", paths,
                   &r, err)
             < 0)
    return -1;
  if (write_file_atomic(dump, r.out ? r.out : "", r.out ? r.out_len : 0, 0600, err) < 0)
    return -1;
  env[0] = a.cache_env;
  argv[0] = a.nix_store;
  p.argv = argv;
  p.extra_env = env;
  p.deadline_ns = s->deadline_ns;
  p.on_stderr_line = on_nix_line;
  p.cb_data = &prog;
  p.stdin_path = dump;
  if (frc_proc_run(&p, &r2, err) < 0)
    return -1;
  unlink(dump);
  if (r2.status != 0 || r2.timed_out)
    return nix_failed(s, "loading the closure's registrations into a Nix database", &r2, &prog.errs,
                      paths, err);
  {
    /* Nix's 8 MiB reserve for its GC: not needed in a template */
    cleanup_free char *reserved = xasprintf("%s/nix/var/nix/db/reserved", root);
    unlink(reserved);
  }
  return 0;
}

char *
frc_gcroot_dir(const struct frc_config *c, const char *kind, const char *name)
{
  return xasprintf("%s/nix/var/nix/gcroots/flox-runc/%s/%s",
                   is_root_store(c) ? "" : c->store_root, kind, name);
}

/* Where a new root is made before it replaces root: ".<name>.new" beside
 * it, under gcroots too, so Nix's GC counts what it pins while it is there
 * (malloc'd).  The caller holds the name's lock: a leftover of a crash is
 * simply replaced. */
static char *
gcroot_tmp(const char *root)
{
  const char *base = strrchr(root, '/') + 1;
  return xasprintf("%.*s.%s.new", (int) (base - root), root, base);
}

/* Puts the new root tmp (a directory of links, or one link) at root in one
 * step: renameat2 RENAME_EXCHANGE when root exists (the old one, then at
 * tmp, is removed after), rename(2) when it does not.  root never goes
 * missing and is never partly built, so a `nix-store --gc` (or `flox-runc
 * gc`) running at any moment finds the old set or the new one, whole.  A
 * file system without RENAME_EXCHANGE (EINVAL) gets two renames, old away
 * then new in: both sets stay under gcroots in between. */
static int
gcroot_replace(const char *tmp, const char *root, frc_error_t *err)
{
  frc_error_t ignored = NULL;
  if (renameat2(AT_FDCWD, tmp, AT_FDCWD, root, RENAME_EXCHANGE) < 0)
    {
      cleanup_free char *old = NULL;
      if (errno == ENOENT && rename(tmp, root) == 0)
        return 0;
      if (errno != EINVAL)
        return frc_error_errno(err, errno, "cannot put the GC root `%s` in place", root);
      old = xasprintf("%s.old", tmp);
      if (frc_rm_rf(old, err) < 0)
        return -1;
      if ((rename(root, old) < 0 && errno != ENOENT) || rename(tmp, root) < 0)
        return frc_error_errno(err, errno, "cannot put the GC root `%s` in place", root);
      frc_rm_rf(old, &ignored);
    }
  /* The old set: a failure leaves it pinning until the next set or release. */
  frc_rm_rf(tmp, &ignored);
  frc_error_release(&ignored);
  return 0;
}

int
frc_gcroot_set(const struct frc_config *c, const char *kind, const char *name, char *const *paths,
               frc_error_t *err)
{
  cleanup_free char *dir = frc_gcroot_dir(c, kind, name);
  cleanup_free char *tmp = gcroot_tmp(dir);
  cleanup_free char *parent = xstrdup(dir);
  size_t i = 0;

  *strrchr(parent, '/') = '\0';
  if (frc_mkdir_p(parent, 0755, err) < 0)
    return frc_error_wrap(err, "cannot create the GC root directory");
  /* The new set is made whole beside the old one (a set of the same name,
   * left by a crashed create or being rebuilt, pins the paths until the
   * new one replaces it). */
  if (frc_rm_rf(tmp, err) < 0)
    return -1;
  if (mkdir(tmp, 0755) < 0)
    return frc_error_errno(err, errno, "cannot create `%s`", tmp);
  for (char *const *p = paths; p && *p; p++, i++)
    {
      char link[32];
      cleanup_free char *lp = NULL;
      snprintf(link, sizeof(link), "%zu", i);
      lp = xasprintf("%s/%s", tmp, link);
      if (symlink(*p, lp) < 0)
        {
          int e = errno;
          frc_error_t ignored = NULL;
          frc_rm_rf(tmp, &ignored);
          frc_error_release(&ignored);
          return frc_error_errno(err, e, "cannot create the GC root `%s`", lp);
        }
    }
  if (gcroot_replace(tmp, dir, err) < 0)
    {
      frc_error_t ignored = NULL;
      frc_rm_rf(tmp, &ignored);
      frc_error_release(&ignored);
      return -1;
    }
  return 0;
}

int
frc_gcroot_link(const struct frc_config *c, const char *name, const char *env_key, frc_error_t *err)
{
  cleanup_free char *link = frc_gcroot_dir(c, "containers", name);
  cleanup_free char *tmp = gcroot_tmp(link);
  cleanup_free char *target = xasprintf("../envs/%s", env_key);
  cleanup_free char *parent = xstrdup(link);

  *strrchr(parent, '/') = '\0';
  if (frc_mkdir_p(parent, 0755, err) < 0)
    return frc_error_wrap(err, "cannot create the GC root directory");
  /* One left by a crashed create of the same name (a link, or a directory
   * of links from before) is replaced, never missing in between: `flox-runc
   * gc` keeps an environment while a container root names it.  rename(2)
   * replaces a link in one step; a directory needs gcroot_replace.  Two
   * calls on the warm create, as many as removing and linking took. */
  if (symlink(target, tmp) < 0)
    {
      if (errno != EEXIST || unlink(tmp) < 0 || symlink(target, tmp) < 0)
        return frc_error_errno(err, errno, "cannot create the GC root `%s`", tmp);
    }
  if (rename(tmp, link) < 0
      && (errno == EISDIR ? gcroot_replace(tmp, link, err) /* a directory of links from before */
                          : frc_error_errno(err, errno, "cannot put the GC root `%s` in place", link))
             < 0)
    {
      unlink(tmp);
      return -1;
    }
  return 0;
}

char *
frc_gcroot_env_of(const struct frc_config *c, const char *name)
{
  cleanup_free char *link = frc_gcroot_dir(c, "containers", name);
  char target[256];
  ssize_t n = readlink(link, target, sizeof(target) - 1);
  const char *key;

  if (n <= 0)
    return NULL;
  target[n] = '\0';
  if (!str_has_prefix(target, "../envs/"))
    return NULL;
  key = target + strlen("../envs/");
  if (key[0] == '\0' || key[0] == '.' || strchr(key, '/'))
    return NULL;
  return xstrdup(key);
}

int
frc_gcroot_release(const struct frc_config *c, const char *kind, const char *name, frc_error_t *err)
{
  cleanup_free char *dir = frc_gcroot_dir(c, kind, name);
  cleanup_free char *tmp = gcroot_tmp(dir);
  /* and what a create killed while it replaced the root left */
  return frc_rm_rf(tmp, err) < 0 ? -1 : frc_rm_rf(dir, err);
}

/* Resolves the logical path (inside the container, where the node's store
 * is mounted at /nix) on the node: every symlink is followed the way the
 * container sees it, with absolute targets mapped under prefix.  Anything
 * leaving /nix, or more than 40 links, gives NULL; so does a link (store
 * contents are hostile) that leads anywhere but into /nix/store: the
 * container has nothing else of the node's /nix (not /nix/var/nix, not
 * another environment's tree), and root must not look there for it. */
char *
frc_nix_resolve(const char *prefix, const char *logical)
{
  cleanup_free char *todo = xstrdup(logical); /* components still to walk */
  cleanup_free char *cur = xstrdup(""); /* the logical path resolved so far */
  int hops = 0;

  while (todo[0])
    {
      char *slash, *comp, *rest;
      cleanup_free char *next = NULL, *phys = NULL;
      struct stat st;

      for (comp = todo; *comp == '/'; comp++)
        ;
      slash = strchr(comp, '/');
      rest = slash ? slash + 1 : comp + strlen(comp);
      if (slash)
        *slash = '\0';
      if (comp[0] == '\0' || strcmp(comp, ".") == 0)
        ;
      else if (strcmp(comp, "..") == 0)
        {
          char *up = strrchr(cur, '/');
          if (up)
            *up = '\0';
        }
      else
        {
          next = xasprintf("%s/%s", cur, comp);
          if (!str_has_prefix(next, "/nix") || (next[4] != '\0' && next[4] != '/')
              || (hops > 0 && strcmp(next, "/nix") != 0 && strcmp(next, "/nix/store") != 0
                  && !str_has_prefix(next, "/nix/store/")))
            return NULL;
          phys = xasprintf("%s%s", prefix, next);
          if (lstat(phys, &st) < 0)
            return NULL;
          if (S_ISLNK(st.st_mode))
            {
              char target[4096];
              ssize_t n = readlink(phys, target, sizeof(target) - 1);
              char *again;
              if (n <= 0 || ++hops > 40)
                return NULL;
              target[n] = '\0';
              if (target[0] == '/')
                cur[0] = '\0';
              again = xasprintf("%s/%s", target, rest);
              free(todo);
              todo = again;
              continue;
            }
          free(cur);
          cur = steal_pointer(&next);
        }
      memmove(todo, rest, strlen(rest) + 1);
    }
  if (hops > 0 && !str_has_prefix(cur, "/nix/store/"))
    return NULL; /* a link to /nix/store itself: the node's whole store */
  return xasprintf("%s%s", prefix, cur);
}
