/* doctor [--containerd-config FILE] [--crio-config FILE] [--token-file FILE]
 *        [--environment OWNER/NAME[:N]]
 * checks a node the way a platform engineer would before scheduling pods:
 * the node config, the real runtime, Nix and the store, the state directory,
 * FloxHub (and an environment with the token, when given), the
 * substituters and keys, and the engine configs it can read
 * (lib/engineconf.c).  One line per finding, each problem with its fix;
 * exit status 1 when there is a problem. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include "dl.h"
#include "engineconf.h"
#include "flox-runc.h"
#include "git.h"
#include "http.h"
#include "hub.h"
#include "proc.h"
#include "runtime.h"
#include "store.h"
#include "token.h"
#include "util.h"

#define USAGE                                                                                      \
  "usage: flox-runc doctor [--containerd-config FILE] [--crio-config FILE] [--token-file FILE] "   \
  "[--environment OWNER/NAME[:N]]"

struct report
{
  int problems;
};

static void
finding(bool ok, const char *text, void *data)
{
  struct report *r = data;
  if (!ok)
    r->problems++;
  printf("%-8s %s\n", ok ? "ok" : "PROBLEM", text);
}

static void
line(struct report *r, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
line(struct report *r, bool ok, const char *fmt, ...)
{
  va_list ap;
  char *msg;
  va_start(ap, fmt);
  msg = xvasprintf(fmt, ap);
  va_end(ap);
  finding(ok, msg, r);
  free(msg);
}

static void
note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
note(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  printf("%-8s ", "note");
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
}

/* The first line a program prints for --version. */
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

static void
check_runtime(struct frc_ctx *ctx, struct report *r)
{
  cleanup_runtime struct frc_runtime rt = { 0 };
  cleanup_error frc_error_t err = NULL;
  cleanup_free char *v = NULL;
  if (frc_runtime_locate(ctx->config.runtime, &rt, &err) < 0)
    {
      line(r, false, "real runtime: %s", err->msg);
      return;
    }
  v = version_of(rt.path, "--version");
  if (v == NULL)
    line(r, false, "real runtime %s does not answer --version: reinstall runc or crun", rt.path);
  else
    line(r, true, "real runtime %s: %s%s", rt.path, v, rt.script ? " (a wrapper script)" : "");
}

static void
check_nix(struct frc_ctx *ctx, struct report *r)
{
  const struct frc_config *c = &ctx->config;
  cleanup_free char *store = frc_store_physical(c, "/nix/store");
  struct stat st;
  cleanup_free char *v = NULL;
  const char *path = getenv("PATH");
  cleanup_free char *dirs = xstrdup(path ? path : "");
  char *save = NULL;
  cleanup_free char *nix_store = NULL;

  for (char *d = strtok_r(dirs, ":", &save); d && !nix_store; d = strtok_r(NULL, ":", &save))
    {
      cleanup_free char *cand = xasprintf("%s/nix-store", d);
      if (d[0] == '/' && access(cand, X_OK) == 0)
        nix_store = steal_pointer(&cand);
    }
  if (nix_store == NULL && access("/nix/var/nix/profiles/default/bin/nix-store", X_OK) == 0)
    nix_store = xstrdup("/nix/var/nix/profiles/default/bin/nix-store");
  if (nix_store == NULL)
    line(r, false, "nix-store not found: install Nix on the node (Debian: apt-get install nix-bin)");
  else if ((v = version_of(nix_store, "--version")) == NULL)
    line(r, false, "%s does not answer --version: repair the node's Nix installation", nix_store);
  else
    line(r, true, "Nix: %s (%s)", v, nix_store);
  if (stat(store, &st) == 0 && S_ISDIR(st.st_mode))
    line(r, true, "store: %s", store);
  else if (strcmp(c->store_root, "/") == 0)
    line(r, false, "store: /nix/store does not exist: install Nix (multi-user or single-user)");
  else
    note("store: %s does not exist yet; the first realisation creates it", store);
}

static void
check_privileges(struct report *r)
{
  if (frc_have_capability(CAP_SYS_ADMIN))
    line(r, true, "privileges: CAP_SYS_ADMIN (runtimes and writable /nix overlays need it)");
  else
    line(r, false, "privileges: no CAP_SYS_ADMIN: engines run flox-runc as root; run doctor as "
                   "root to check the node as they see it");
}

static void
check_state_dir(struct frc_ctx *ctx, struct report *r)
{
  cleanup_free char *dir = xstrdup(ctx->config.state_dir);
  while (access(dir, F_OK) < 0 && strrchr(dir, '/') && strrchr(dir, '/') != dir)
    *strrchr(dir, '/') = '\0';
  if (access(dir, W_OK) == 0)
    line(r, true, "state_dir %s is writable", ctx->config.state_dir);
  else
    line(r, false, "state_dir %s is not writable (%s): run flox-runc as root or fix `state_dir`",
         ctx->config.state_dir, strerror(errno));
}

static void
check_hub(struct frc_ctx *ctx, struct report *r, const char *token, const char *env_arg)
{
  const struct frc_config *c = &ctx->config;
  struct frc_http_opts o = { .ca_file = c->ca_file, .deadline_ns = frc_now_ns() + 15000000000LL,
                             .max_body = 1 << 20 };
  cleanup_http_response struct frc_http_response resp = { 0 };
  cleanup_error frc_error_t err = NULL;

  if (frc_http_request(&o, "GET", c->floxhub_git_url, NULL, NULL, 0, &resp, &err) < 0)
    {
      line(r, false, "FloxHub git service %s: %s: check the network, proxy variables or `ca_file`",
           c->floxhub_git_url, err->msg);
      return;
    }
  line(r, true, "FloxHub git service %s answers (HTTP %ld)", c->floxhub_git_url, resp.status);
  if (token && frc_token_check(token, (long long) time(NULL), &err) < 0)
    {
      line(r, false, "token: %s", err->msg);
      return;
    }
  if (env_arg)
    {
      struct frc_envref ref;
      cleanup_free char *url = NULL;
      struct frc_git_remote remote;
      struct frc_http_opts go = o;
      char oid[FRC_OID_HEX + 1];
      if (frc_envref_parse(env_arg, &ref, &err) < 0)
        {
          line(r, false, "--environment: %s", err->msg);
          return;
        }
      go.user = token ? "oauth" : NULL;
      go.password = token;
      go.max_body = 0;
      url = frc_hub_repo_url(c, ref.owner);
      if (frc_git_remote_init(&remote, url, &go, &err) < 0
          || frc_git_ls_ref(&remote, ref.name, oid, &err) < 0)
        line(r, false, "environment %s/%s: %s%s", ref.owner, ref.name, err->msg,
             frc_error_get_code(err) == FRC_ECODE_AUTH
                 ? " (private environments need the floxhub-token secret)"
                 : "");
      else
        line(r, true, "environment %s/%s is accessible%s (branch at %.12s)", ref.owner, ref.name,
             token ? " with the token" : " anonymously", oid);
      frc_git_remote_release(&remote);
    }
}

static void
check_substituters(struct frc_ctx *ctx, struct report *r)
{
  const struct frc_config *c = &ctx->config;
  for (char **s = c->substituters; s && *s; s++)
    {
      cleanup_free char *url = xasprintf("%s/nix-cache-info", *s);
      struct frc_http_opts o = { .ca_file = c->ca_file, .deadline_ns = frc_now_ns() + 15000000000LL,
                                 .max_body = 65536 };
      cleanup_http_response struct frc_http_response resp = { 0 };
      cleanup_error frc_error_t err = NULL;
      if (str_has_prefix(*s, "file://"))
        {
          cleanup_free char *p = xasprintf("%s/nix-cache-info", *s + strlen("file://"));
          line(r, access(p, R_OK) == 0, "substituter %s%s", *s,
               access(p, R_OK) == 0 ? "" : ": no nix-cache-info there: fix `substituters`");
          continue;
        }
      if (frc_http_request(&o, "GET", url, NULL, NULL, 0, &resp, &err) < 0)
        line(r, false, "substituter %s: %s: fix the URL or the network", *s, err->msg);
      else if (resp.status != 200 || strstr(resp.body, "StoreDir: /nix/store") == NULL)
        line(r, false, "substituter %s: /nix-cache-info answered HTTP %ld without StoreDir: "
                       "/nix/store: it is not a Nix binary cache for /nix/store",
             *s, resp.status);
      else
        line(r, true, "substituter %s is a binary cache for /nix/store", *s);
    }
  for (char **k = c->trusted_public_keys; k && *k; k++)
    {
      const char *colon = strchr(*k, ':');
      size_t b64 = colon ? strlen(colon + 1) : 0;
      /* 32 bytes are 44 base64 characters */
      line(r, colon && b64 == 44 && colon[44] == '=', "trusted public key %.*s%s",
           colon ? (int) (colon - *k) : (int) strlen(*k), *k,
           colon && b64 == 44 ? "" : ": not `name:base64 of 32 bytes`: fix trusted_public_keys");
    }
}

static bool
is_self(const char *path)
{
  return frc_runtime_is_self(path);
}

static void
check_engines(struct report *r, const char *containerd, const char *crio)
{
  cleanup_error frc_error_t err = NULL;
  const char *cd = containerd ? containerd : "/etc/containerd/config.toml";
  char *crio_files[66] = { NULL };
  size_t n = 0;
  bool any = false;

  if (containerd || access(cd, R_OK) == 0)
    {
      any = true;
      if (frc_check_containerd_config(cd, is_self, finding, r, &err) < 0)
        line(r, false, "containerd config: %s", err->msg);
    }
  frc_error_release(&err);
  if (crio)
    crio_files[n++] = xstrdup(crio);
  else
    {
      DIR *d;
      struct dirent *e;
      if (access("/etc/crio/crio.conf", R_OK) == 0)
        crio_files[n++] = xstrdup("/etc/crio/crio.conf");
      if ((d = opendir("/etc/crio/crio.conf.d")) != NULL)
        {
          while ((e = readdir(d)) != NULL && n < 64)
            if (e->d_name[0] != '.' && strlen(e->d_name) > 5
                && strcmp(e->d_name + strlen(e->d_name) - 5, ".conf") == 0)
              crio_files[n++] = xasprintf("/etc/crio/crio.conf.d/%s", e->d_name);
          closedir(d);
        }
    }
  if (n > 0)
    {
      any = true;
      if (frc_check_crio_config((const char *const *) crio_files, is_self, finding, r, &err) < 0)
        line(r, false, "CRI-O config: %s", err->msg);
    }
  for (size_t i = 0; i < n; i++)
    free(crio_files[i]);
  if (!any)
    note("no containerd (/etc/containerd/config.toml) or CRI-O (/etc/crio) config found; pass "
         "--containerd-config or --crio-config to check one");
}

int
frc_cmd_doctor(struct frc_ctx *ctx, frc_error_t *err)
{
  const char *containerd = NULL, *crio = NULL, *token_file = NULL, *env_arg = NULL;
  cleanup_token char *token = NULL;
  struct report r = { 0 };

  for (int i = 0; i < ctx->cl.nargs; i++)
    {
      const char *a = ctx->cl.args[i];
      const char *v = i + 1 < ctx->cl.nargs ? ctx->cl.args[i + 1] : NULL;
      if (v && strcmp(a, "--containerd-config") == 0)
        containerd = v, i++;
      else if (v && strcmp(a, "--crio-config") == 0)
        crio = v, i++;
      else if (v && strcmp(a, "--token-file") == 0)
        token_file = v, i++;
      else if (v && strcmp(a, "--environment") == 0)
        env_arg = v, i++;
      else
        return frc_error(err, USAGE);
    }
  if (frc_ctx_config(ctx, err) < 0)
    {
      finding(false, (*err)->msg, &r);
      fflush(stdout);
      return -1;
    }
  line(&r, true, "node config: %s", ctx->config.from_file ? ctx->config.path : "defaults (no file)");
  if (token_file && frc_token_read_file(token_file, &token, err) < 0)
    return -1;
  check_runtime(ctx, &r);
  check_nix(ctx, &r);
  check_privileges(&r);
  check_state_dir(ctx, &r);
  check_hub(ctx, &r, token, env_arg);
  check_substituters(ctx, &r);
  check_engines(&r, containerd, crio);
  printf("%d problem%s\n", r.problems, r.problems == 1 ? "" : "s");
  if (fflush(stdout) != 0)
    return frc_error(err, "cannot write to stdout");
  ctx->exit_status = r.problems ? 1 : 0;
  return 0;
}
