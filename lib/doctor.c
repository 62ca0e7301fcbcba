#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include "bindhook.h"
#include "criu.h"
#include "dl.h"
#include "doctor.h"
#include "git.h"
#include "http.h"
#include "hub.h"
#include "proc.h"
#include "runtime.h"
#include "store.h"
#include "token.h"
#include "util.h"

struct doc
{
  const struct frc_doctor_opts *o;
  int problems;
};

static void
counted(enum frc_finding kind, const char *text, void *data)
{
  struct doc *d = data;
  if (kind == FRC_FINDING_PROBLEM)
    d->problems++;
  d->o->report(kind, text, d->o->data);
}

static void line(struct doc *d, enum frc_finding kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
line(struct doc *d, enum frc_finding kind, const char *fmt, ...)
{
  va_list ap;
  char *msg;
  va_start(ap, fmt);
  msg = xvasprintf(fmt, ap);
  va_end(ap);
  counted(kind, msg, d);
  free(msg);
}

#define OK FRC_FINDING_OK
#define PROBLEM FRC_FINDING_PROBLEM
#define NOTE FRC_FINDING_NOTE

/* The first line a program prints for flag (--version). */
static char *
version_of(const char *prog, const char *flag)
{
  const char *argv[] = { prog, flag, NULL };
  struct frc_proc p = { .argv = argv, .deadline_ns = frc_now_ns() + 10000000000LL,
                        .capture_stdout = 1 };
  cleanup_proc_result struct frc_proc_result res = { 0 };
  frc_error_t ignored = NULL;
  if (frc_proc_run(&p, &res, &ignored) < 0 || res.status != 0)
    {
      frc_error_release(&ignored);
      return NULL;
    }
  res.out[strcspn(res.out, "\n")] = '\0';
  return xstrdup(res.out);
}

/* An executable named name in PATH (absolute directories only), else in dirs. */
static char *
find_program(const char *name, const char *const *dirs)
{
  const char *path = getenv("PATH");
  cleanup_free char *copy = xstrdup(path ? path : "");
  char *save = NULL;
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
    {
      cleanup_free char *cand = xasprintf("%s/%s", d, name);
      if (d[0] == '/' && access(cand, X_OK) == 0)
        return steal_pointer(&cand);
    }
  for (const char *const *d = dirs; d && *d; d++)
    {
      cleanup_free char *cand = xasprintf("%s/%s", *d, name);
      if (access(cand, X_OK) == 0)
        return steal_pointer(&cand);
    }
  return NULL;
}

static void
check_runtime(const struct frc_config *c, struct doc *d)
{
  cleanup_runtime struct frc_runtime rt = { 0 };
  cleanup_error frc_error_t err = NULL;
  cleanup_free char *v = NULL;
  if (frc_runtime_locate(c->runtime, &rt, &err) < 0)
    {
      line(d, PROBLEM, "real runtime: %s", err->msg);
      return;
    }
  v = version_of(rt.path, "--version");
  if (v == NULL)
    line(d, PROBLEM, "real runtime %s does not answer --version: reinstall runc or crun", rt.path);
  else
    line(d, OK, "real runtime %s: %s%s", rt.path, v, rt.script ? " (a wrapper script)" : "");
}

static void
check_nix(const struct frc_config *c, struct doc *d)
{
  cleanup_free char *store = frc_store_physical(c, "/nix/store");
  cleanup_free char *nix_store = frc_nix_store_find();
  cleanup_free char *v = NULL;
  struct stat st;

  if (nix_store == NULL)
    line(d, PROBLEM, "nix-store not found: install Nix on the node (Debian: apt-get install nix-bin)");
  else if ((v = version_of(nix_store, "--version")) == NULL)
    line(d, PROBLEM, "%s does not answer --version: repair the node's Nix installation", nix_store);
  else
    line(d, OK, "Nix: %s (%s)", v, nix_store);
  if (stat(store, &st) == 0 && S_ISDIR(st.st_mode))
    line(d, OK, "store: %s", store);
  else if (strcmp(c->store_root, "/") == 0)
    line(d, PROBLEM, "store: /nix/store does not exist: install Nix (multi-user or single-user)");
  else
    line(d, NOTE, "store: %s does not exist yet; the first realisation creates it", store);
}

/* The closure hook's program: the static flox-runc-hook beside this
 * flox-runc, as create would choose it (a note when it is not: the hook is
 * then flox-runc itself, ~0.4 ms slower a create). */
static void
check_hook(struct doc *d)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

  if (n <= 0 || exe[0] != '/')
    return;
  exe[n] = '\0';
  if (frc_bindhook_program(exe, sizeof(exe)))
    line(d, OK, "closure hook: %s (a static program)", exe);
  else
    line(d, NOTE, "closure hook: `%s " FRC_BINDHOOK_VERB "`: no usable " FRC_BINDHOOK_PROGRAM
                  " beside it (a regular file of its owner, writable by nobody else); install "
                  "both from one build (flox-runc install) for ~0.4 ms less a create",
         exe);
}

static void
check_privileges(struct doc *d)
{
  if (frc_have_capability(CAP_SYS_ADMIN))
    line(d, OK, "privileges: CAP_SYS_ADMIN (runtimes and writable /nix overlays need it)");
  else
    line(d, PROBLEM, "privileges: no CAP_SYS_ADMIN: engines run flox-runc as root; run doctor as "
                     "root to check the node as they see it");
}

/* Checkpoint and restore (the kubelet's checkpoint API, podman): CRIU on
 * the node and whether it works on this kernel, and a crun that cannot
 * checkpoint the hook's binds.  Notes, never problems: containers run
 * without them. */
static void
check_checkpoint(const struct frc_config *c, struct doc *d)
{
  static const char *const dirs[] = { "/usr/local/sbin", "/usr/sbin", "/sbin", NULL };
  cleanup_free char *criu = find_program("criu", dirs);
  cleanup_free char *v = NULL;
  cleanup_runtime struct frc_runtime rt = { 0 };
  frc_error_t ignored = NULL;
  char name[128];

  if (criu == NULL)
    line(d, NOTE, "checkpoint/restore: no criu on the node: the kubelet's checkpoint API and "
                  "podman container checkpoint fail; install CRIU 4.0 or later "
                  "(docs/troubleshooting.md, \"Checkpoint and restore\")");
  else if (!frc_have_capability(CAP_SYS_ADMIN))
    line(d, NOTE, "checkpoint/restore: %s found; run doctor as root to run `criu check`", criu);
  else
    {
      const char *argv[] = { criu, "check", NULL };
      struct frc_proc p = { .argv = argv, .deadline_ns = frc_now_ns() + 30000000000LL,
                            .capture_stdout = 1 };
      cleanup_proc_result struct frc_proc_result res = { 0 };
      v = version_of(criu, "--version");
      if (frc_proc_run(&p, &res, &ignored) == 0 && res.status == 0)
        line(d, OK, "checkpoint/restore: %s (%s) passes criu check", criu, v ? v : "no version");
      else
        line(d, NOTE,
             "checkpoint/restore: `%s check` fails on this kernel (%s): checkpoints will fail; "
             "install CRIU 4.0 or later (Debian 12's 3.17 fails on kernels from 6.13)",
             criu, res.last_err && res.last_err[0] ? res.last_err : ignored ? ignored->msg : "no message");
      frc_error_release(&ignored);
    }
  if (c->allow_criu_config_annotation)
    line(d, NOTE,
         "checkpoint/restore: allow_criu_config_annotation is true: a Flox container keeps its "
         "spec's org.criu.config, so whatever sets that annotation (a pod, where the engine passes "
         "it) chooses CRIU's configuration and its action-scripts, run as root at a checkpoint; "
         "set it to false unless only the engine sets it (docs/security.md)");
  if (c->closure_hook_min_paths >= 1000000 || frc_runtime_locate(c->runtime, &rt, &ignored) < 0)
    {
      frc_error_release(&ignored);
      return;
    }
  free(v);
  v = version_of(rt.path, "--version");
  if (v && !frc_criu_runtime_reads_config(v, name, sizeof(name)))
    line(d, NOTE,
         "checkpoint/restore: %s reads no org.criu.config (crun 1.26 does): a checkpoint of a "
         "container whose closure flox-runc's hook binds (closure_hook_min_paths %ld and more "
         "paths) fails; set closure_hook_min_paths to 1000000 where checkpoints matter",
         name, c->closure_hook_min_paths);
}

static void
check_state_dir(const struct frc_config *c, struct doc *d)
{
  cleanup_free char *dir = xstrdup(c->state_dir);
  while (access(dir, F_OK) < 0 && strrchr(dir, '/') && strrchr(dir, '/') != dir)
    *strrchr(dir, '/') = '\0';
  if (access(dir, W_OK) == 0)
    line(d, OK, "state_dir %s is writable", c->state_dir);
  else
    line(d, PROBLEM, "state_dir %s is not writable (%s): run flox-runc as root or fix `state_dir`",
         c->state_dir, strerror(errno));
}

/* The fetch child's uid is shared with whatever else runs as it: nobody is
 * what many pods run as (docs/security.md). */
static void
check_fetch_uid(const struct frc_config *c, struct doc *d)
{
  if (c->fetch_uid == 65534)
    line(d, NOTE, "fetch_uid is 65534 (nobody), which pods may run as too: create a user for the "
                  "fetch child only (useradd --system --no-create-home --shell /usr/sbin/nologin "
                  "flox-fetch) and set `fetch_uid`/`fetch_gid` to its ids");
  else
    line(d, OK, "fetch_uid %ld, fetch_gid %ld (the unprivileged fetch child)", c->fetch_uid, c->fetch_gid);
}

/* The options of a request as the FloxHub client and nix-store make it: the
 * ca_file, the node config's proxies. */
static struct frc_http_opts
http_opts(const struct frc_config *c, const char *url, size_t max_body)
{
  struct frc_http_opts o = { .ca_file = c->ca_file, .deadline_ns = frc_now_ns() + 15000000000LL,
                             .max_body = max_body, .no_proxy = c->no_proxy };
  o.proxy = str_has_prefix(url, "https://") ? c->https_proxy : c->http_proxy;
  return o;
}

/* " (through the proxy P)" or "": the path a check took (malloc'd). */
static char *
via(const struct frc_http_opts *o, const char *url)
{
  const char *p = frc_http_proxy_in_use(o, url);
  cleanup_free char *safe = p ? frc_url_redact(p) : NULL;
  return safe ? xasprintf(" (through the proxy %s)", safe) : xstrdup("");
}

/* The hub: its git service must answer; a 5xx is a failing hub.  What the
 * root of a git service answers proves little (a healthy one may say 404),
 * so without --environment a 4xx is said, not judged; with it, the
 * environment's own repository must answer. */
static void
check_hub(const struct frc_config *c, struct doc *d)
{
  const char *token = d->o->token, *env_arg = d->o->environment;
  struct frc_http_opts o = http_opts(c, c->floxhub_git_url, 1 << 20);
  cleanup_free char *shown = frc_url_mask(c->floxhub_git_url); /* what `flox-runc config` shows */
  cleanup_free char *path = via(&o, c->floxhub_git_url);
  cleanup_http_response struct frc_http_response resp = { 0 };
  cleanup_error frc_error_t err = NULL;

  if (frc_http_request(&o, "GET", c->floxhub_git_url, NULL, NULL, 0, &resp, &err) < 0)
    {
      line(d, PROBLEM, "FloxHub git service %s%s: %s: check the network, the proxy keys or `ca_file`",
           shown, strstr(err->msg, "through the proxy") ? "" : path, err->msg);
      return;
    }
  if (resp.status >= 500)
    line(d, PROBLEM, "FloxHub git service %s answers HTTP %ld%s: the hub is failing: retry later, or "
                     "fix `floxhub_url` / `floxhub_git_url`",
         shown, resp.status, path);
  else if (resp.status >= 400 && env_arg == NULL)
    line(d, NOTE, "FloxHub git service %s is reachable but answers HTTP %ld at its root%s, which "
                  "proves little: pass --environment OWNER/NAME to check an environment you use",
         shown, resp.status, path);
  else if (resp.status < 400)
    line(d, OK, "FloxHub git service %s answers (HTTP %ld)%s", shown, resp.status, path);
  if (token && frc_token_check(token, (long long) time(NULL), &err) < 0)
    {
      line(d, PROBLEM, "token: %s", err->msg);
      return;
    }
  if (env_arg)
    {
      struct frc_envref ref;
      char oid[FRC_OID_HEX + 1];
      if (frc_envref_parse(env_arg, &ref, &err) < 0)
        {
          line(d, PROBLEM, "--environment: %s", err->msg);
          return;
        }
      /* The conversation with the hub runs in the unprivileged fetch child. */
      if (frc_hub_check_access(c, &ref, token, o.deadline_ns, oid, &err) < 0)
        line(d, PROBLEM, "environment %s/%s: %s%s", ref.owner, ref.name, err->msg,
             frc_error_get_code(err) == FRC_ECODE_AUTH
                 ? " (private environments need the floxhub-token secret)"
                 : "");
      else
        line(d, OK, "environment %s/%s is accessible%s (branch at %.12s)", ref.owner, ref.name,
             token ? " with the token" : " anonymously", oid);
    }
}

static void
check_substituters(const struct frc_config *c, struct doc *d)
{
  for (char **s = c->substituters; s && *s; s++)
    {
      cleanup_free char *url = xasprintf("%s/nix-cache-info", *s);
      cleanup_free char *shown = frc_url_mask(*s); /* never a cache's credentials */
      /* nix-store reaches it with the system's CA bundle, through the proxy */
      struct frc_http_opts o = http_opts(c, url, 65536);
      cleanup_free char *path = NULL;
      o.ca_file = NULL; /* not the hub's ca_file: $SSL_CERT_FILE or the system's, as Nix reads */
      path = via(&o, url);
      cleanup_http_response struct frc_http_response resp = { 0 };
      cleanup_error frc_error_t err = NULL;
      if (str_has_prefix(*s, "file://"))
        {
          cleanup_free char *p = xasprintf("%s/nix-cache-info", *s + strlen("file://"));
          bool ok = access(p, R_OK) == 0;
          line(d, ok ? OK : PROBLEM, "substituter %s%s", shown,
               ok ? "" : ": no nix-cache-info there: fix `substituters`");
          continue;
        }
      if (frc_http_request(&o, "GET", url, NULL, NULL, 0, &resp, &err) < 0)
        line(d, PROBLEM, "substituter %s%s: %s: fix the URL, the network or the proxy keys", shown,
             strstr(err->msg, "through the proxy") ? "" : path, err->msg);
      else if (resp.status != 200 || strstr(resp.body, "StoreDir: /nix/store") == NULL)
        line(d, PROBLEM, "substituter %s: /nix-cache-info answered HTTP %ld without StoreDir: "
                         "/nix/store: it is not a Nix binary cache for /nix/store",
             shown, resp.status);
      else
        line(d, OK, "substituter %s is a binary cache for /nix/store%s", shown, path);
    }
  for (char **k = c->trusted_public_keys; k && *k; k++)
    {
      const char *colon = strchr(*k, ':');
      size_t b64 = colon ? strlen(colon + 1) : 0;
      /* 32 bytes are 44 base64 characters */
      bool ok = colon && b64 == 44 && colon[44] == '=';
      line(d, ok ? OK : PROBLEM, "trusted public key %.*s%s",
           colon ? (int) (colon - *k) : (int) strlen(*k), *k,
           colon && b64 == 44 ? "" : ": not `name:base64 of 32 bytes`: fix trusted_public_keys");
    }
}

static bool
is_self(const char *path, void *data)
{
  (void) data;
  return frc_runtime_is_self(path);
}

int
frc_containerd_major(const char *containerd)
{
  cleanup_free char *v = version_of(containerd, "--version");
  return frc_containerd_parse_major(v);
}

static void
check_containerd(struct doc *d, const char *path, struct frc_engine_check *chk)
{
  const struct frc_doctor_opts *o = d->o;
  cleanup_free char *bin = o->containerd_binary
                               ? (o->containerd_binary[0] ? xstrdup(o->containerd_binary) : NULL)
                               : find_program("containerd", NULL);
  struct frc_containerd_conf conf __attribute__((cleanup(frc_containerd_release))) = { 0 };
  cleanup_error frc_error_t err = NULL;
  bool dumped = false;

  if (bin)
    chk->containerd_major = frc_containerd_major(bin);
  /* What containerd itself makes of the files, when it is here: the truth
   * about the registration. */
  if (bin && access(path, R_OK) == 0)
    {
      const char *argv[] = { bin, "--config", path, "config", "dump", NULL };
      struct frc_proc p = { .argv = argv, .deadline_ns = frc_now_ns() + 20000000000LL,
                            .capture_stdout = 1 };
      cleanup_proc_result struct frc_proc_result res = { 0 };
      cleanup_free char *label = xasprintf("`containerd config dump` of %s", path);
      if (frc_proc_run(&p, &res, &err) < 0)
        line(d, PROBLEM, "containerd: cannot run %s: %s", bin, err->msg);
      else if (res.status != 0)
        line(d, PROBLEM, "containerd cannot load %s: %s: fix the file (containerd will not start)",
             path, res.last_err && res.last_err[0] ? res.last_err : "it failed");
      else if (frc_check_containerd_dump(res.out, label, chk, &err) < 0)
        line(d, PROBLEM, "containerd config dump: %s", err->msg);
      else
        dumped = true;
      frc_error_release(&err);
    }
  /* The files, imports followed: what containerd 1.x silently drops, and
   * the registration when containerd is not here to say. */
  if (frc_containerd_load("/", path, &conf, &err) < 0)
    {
      /* containerd's own reading (above) is what counts when there is one */
      line(d, dumped ? NOTE : PROBLEM, "containerd config%s: %s",
           dumped ? " (followed by flox-runc's reader)" : "", err->msg);
      return;
    }
  if (dumped)
    frc_check_containerd_sections(&conf, chk); /* the dump judged the registration */
  else
    frc_check_containerd(&conf, chk);
}

int
frc_doctor_engines(const struct frc_doctor_opts *o)
{
  struct doc d = { .o = o };
  struct frc_engine_check chk = { .is_self = is_self, .report = counted, .data = &d };
  cleanup_error frc_error_t err = NULL;
  const char *cd = o->containerd_config ? o->containerd_config : "/etc/containerd/config.toml";
  cleanup_strv char **crio = NULL;
  bool any = false;

  if (o->containerd_config || access(cd, R_OK) == 0)
    {
      any = true;
      check_containerd(&d, cd, &chk);
    }
  if (o->crio_config)
    {
      crio = xmalloc0(2 * sizeof(char *));
      crio[0] = xstrdup(o->crio_config);
    }
  else
    crio = frc_crio_files("/");
  if (crio[0])
    {
      any = true;
      if (frc_check_crio("/", (const char *const *) crio, &chk, &err) < 0)
        line(&d, PROBLEM, "CRI-O config: %s", err->msg);
    }
  if (!any)
    line(&d, NOTE, "no containerd (/etc/containerd/config.toml) or CRI-O (/etc/crio) config found; "
                   "pass --containerd-config or --crio-config to check one");
  return d.problems;
}

int
frc_doctor_run(const struct frc_config *c, const struct frc_doctor_opts *o)
{
  struct doc d = { .o = o };
  line(&d, OK, "node config: %s", c->from_file ? c->path : "defaults (no file)");
  check_runtime(c, &d);
  check_nix(c, &d);
  check_hook(&d);
  check_privileges(&d);
  check_checkpoint(c, &d);
  check_state_dir(c, &d);
  check_fetch_uid(c, &d);
  check_hub(c, &d);
  check_substituters(c, &d);
  return d.problems + frc_doctor_engines(o);
}
