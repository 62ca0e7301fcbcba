/* resolve OWNER/NAME[:N] [--token-file FILE] [--json]: resolve an
 * environment the way create does (lib/hub.c: node cache, then FloxHub) and
 * print the generation, its packages for this node's system and where it
 * came from.  For people debugging a node. */
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "flox-runc.h"
#include "hub.h"
#include "lockfile.h"
#include "token.h"
#include "util.h"

static void
print_text(const struct frc_envref *ref, const struct frc_resolved *r, const struct frc_lockfile *l)
{
  char buf[256];
  printf("environment: %s\n", frc_envref_format(ref, buf, sizeof(buf)));
  printf("generation:  %u%s (live: %u)\n", r->generation, r->pinned ? " (pinned)" : "", r->live);
  printf("source:      %s (%u HTTP request%s)\n", frc_resolve_source_name(r->source), r->requests,
         r->requests == 1 ? "" : "s");
  printf("commit:      %s\n", r->commit[0] ? r->commit : "(unknown)");
  printf("lockfile:    %s\n", r->lockfile_path);
  printf("system:      %s\n", frc_nix_system());
  printf("packages:    %zu\n", l->npkgs);
  for (size_t i = 0; i < l->npkgs; i++)
    for (char **p = l->pkgs[i].store_paths; *p; p++)
      printf("  %-24s %s\n", p == l->pkgs[i].store_paths ? l->pkgs[i].label : "", *p);
  if (l->nvars)
    printf("vars:        %zu\n", l->nvars);
  if (l->hook_on_activate)
    printf("hook:        on-activate\n");
}

static void
gen_str(yajl_gen g, const char *s)
{
  yajl_gen_string(g, (const unsigned char *) s, strlen(s));
}

static void
print_json(const struct frc_envref *ref, const struct frc_resolved *r, const struct frc_lockfile *l)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  const unsigned char *buf;
  size_t len;
  char refbuf[256];

  yajl_gen_map_open(g);
  gen_str(g, "environment");
  gen_str(g, frc_envref_format(ref, refbuf, sizeof(refbuf)));
  gen_str(g, "generation");
  yajl_gen_integer(g, r->generation);
  gen_str(g, "live");
  yajl_gen_integer(g, r->live);
  gen_str(g, "pinned");
  yajl_gen_bool(g, r->pinned);
  gen_str(g, "source");
  gen_str(g, r->source == FRC_FROM_HUB              ? "hub"
             : r->source == FRC_FROM_CACHE          ? "cache"
             : r->source == FRC_FROM_CACHE_VERIFIED ? "cache-verified"
                                                    : "cache-offline");
  gen_str(g, "requests");
  yajl_gen_integer(g, r->requests);
  gen_str(g, "commit");
  gen_str(g, r->commit);
  gen_str(g, "lockfile");
  gen_str(g, r->lockfile_path);
  gen_str(g, "system");
  gen_str(g, frc_nix_system());
  gen_str(g, "packages");
  yajl_gen_array_open(g);
  for (size_t i = 0; i < l->npkgs; i++)
    {
      yajl_gen_map_open(g);
      gen_str(g, "install_id");
      gen_str(g, l->pkgs[i].install_id);
      gen_str(g, "priority");
      yajl_gen_integer(g, l->pkgs[i].priority);
      gen_str(g, "store_paths");
      yajl_gen_array_open(g);
      for (char **p = l->pkgs[i].store_paths; *p; p++)
        gen_str(g, *p);
      yajl_gen_array_close(g);
      yajl_gen_map_close(g);
    }
  yajl_gen_array_close(g);
  yajl_gen_map_close(g);
  yajl_gen_get_buf(g, &buf, &len);
  fwrite(buf, 1, len, stdout);
  fputc('\n', stdout);
  yajl_gen_free(g);
}

int
frc_cmd_resolve(struct frc_ctx *ctx, frc_error_t *err)
{
  const char *refarg = NULL, *token_file = NULL;
  bool json = false;
  struct frc_envref ref;
  cleanup_token char *token = NULL;
  cleanup_resolved struct frc_resolved r = { 0 };
  cleanup_lockfile struct frc_lockfile lock = { 0 };
  struct frc_resolve_request req = { 0 };

  for (int i = 0; i < ctx->cl.nargs; i++)
    {
      const char *a = ctx->cl.args[i];
      if (strcmp(a, "--json") == 0)
        json = true;
      else if (strcmp(a, "--token-file") == 0 && i + 1 < ctx->cl.nargs)
        token_file = ctx->cl.args[++i];
      else if (str_has_prefix(a, "--token-file="))
        token_file = a + strlen("--token-file=");
      else if (a[0] != '-' && refarg == NULL)
        refarg = a;
      else
        return frc_error(err, "usage: flox-runc resolve OWNER/NAME[:N] [--token-file FILE] [--json]");
    }
  if (refarg == NULL)
    return frc_error(err, "usage: flox-runc resolve OWNER/NAME[:N] [--token-file FILE] [--json]");
  if (frc_envref_parse(refarg, &ref, err) < 0 || frc_ctx_config(ctx, err) < 0)
    return -1;
  if (token_file && frc_token_load_checked(token_file, &token, err) < 0)
    return -1;

  req.config = &ctx->config;
  req.ref = &ref;
  req.token = token;
  req.log = &ctx->log;
  if (frc_hub_resolve(&req, &r, err) < 0)
    return -1;
  if (frc_lockfile_parse(r.lockfile, r.lockfile_len, frc_nix_system(), &lock, err) < 0)
    return -1;
  if (json)
    print_json(&ref, &r, &lock);
  else
    print_text(&ref, &r, &lock);
  if (fflush(stdout) != 0)
    return frc_error(err, "cannot write to stdout");
  return 0;
}
