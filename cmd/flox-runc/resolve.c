/* resolve OWNER/NAME[:N] [--token-file FILE] [--json]: resolve an
 * environment the way create does (lib/hub.c: node cache, then FloxHub) and
 * print the generation, its packages for this node's system and where it
 * came from.  For people debugging a node.
 *
 * resolve --lockfile FILE [--system S] [--mode run|dev] [--store-root DIR]
 * [--json]: no hub, no Nix: what an environment of that lockfile links on a
 * node of system S (default this node's) in that mode (default the
 * manifest's options.activate.mode, else run), each store path with the
 * priority Flox's builder links it at (lib/lockfile.h); with --store-root,
 * whose <DIR>/nix/store holds the realised packages, also what they
 * propagate (lib/propagate.h).  Refusals are errors, as in a create. */
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "flox-runc.h"
#include "hub.h"
#include "lockfile.h"
#include "propagate.h"
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

static void
gen_link(yajl_gen g, const char *path, long priority, const char *install_id, const char *output,
         bool propagated)
{
  yajl_gen_map_open(g);
  gen_str(g, "store_path");
  gen_str(g, path);
  gen_str(g, "priority");
  yajl_gen_integer(g, priority);
  gen_str(g, "install_id");
  if (install_id)
    gen_str(g, install_id);
  else
    yajl_gen_null(g);
  gen_str(g, "output");
  if (output)
    gen_str(g, output);
  else
    yajl_gen_null(g);
  gen_str(g, "propagated");
  yajl_gen_bool(g, propagated);
  yajl_gen_map_close(g);
}

/* resolve --lockfile: the selection alone. */
static int
resolve_lockfile(const char *file, const char *system, const char *mode_arg,
                 const char *store_root, bool json, frc_error_t *err)
{
  cleanup_free char *text = NULL;
  cleanup_lockfile struct frc_lockfile l = { 0 };
  struct frc_propagated *prop = NULL;
  cleanup_free struct frc_lock_link *links = NULL;
  size_t len = 0, nprop = 0, nlinks;
  enum frc_mode mode;
  const char *source;

  if (read_file_bounded(file, FRC_LOCKFILE_MAX_BYTES, &text, &len, err) < 0)
    return -1;
  if (frc_lockfile_parse(text, len, system, &l, err) < 0)
    return frc_error_wrap(err, "%s for %s", file, system);
  mode = frc_lock_pick_mode(&l, mode_arg != NULL,
                            mode_arg && strcmp(mode_arg, "dev") == 0 ? FRC_MODE_DEV : FRC_MODE_RUN);
  source = mode_arg ? "argument" : l.has_mode ? "manifest" : "default";
  if (store_root && frc_propagate(store_root, &l, mode, &prop, &nprop, err) < 0)
    return -1;
  nlinks = frc_lock_links(&l, mode, &links);
  if (json)
    {
      yajl_gen g = yajl_gen_alloc(NULL);
      const unsigned char *buf;
      size_t blen;
      yajl_gen_map_open(g);
      gen_str(g, "system");
      gen_str(g, system);
      gen_str(g, "mode");
      gen_str(g, frc_mode_name(mode));
      gen_str(g, "mode_from");
      gen_str(g, source);
      gen_str(g, "links");
      yajl_gen_array_open(g);
      for (size_t i = 0; i < nlinks; i++)
        gen_link(g, links[i].path, links[i].priority, l.pkgs[links[i].pkg].install_id,
                 links[i].output->name, false);
      for (size_t i = 0; i < nprop; i++)
        gen_link(g, prop[i].path, prop[i].priority, NULL, NULL, true);
      yajl_gen_array_close(g);
      gen_str(g, "realise");
      yajl_gen_array_open(g);
      for (char **p = l.paths; *p; p++)
        gen_str(g, *p);
      yajl_gen_array_close(g);
      yajl_gen_map_close(g);
      yajl_gen_get_buf(g, &buf, &blen);
      fwrite(buf, 1, blen, stdout);
      fputc('\n', stdout);
      yajl_gen_free(g);
    }
  else
    {
      printf("system:   %s\nmode:     %s (%s)\npackages: %zu\n", system, frc_mode_name(mode),
             source, l.npkgs);
      for (size_t i = 0; i < nlinks; i++)
        printf("  %6ld  %-24s %s\n", links[i].priority,
               i == 0 || links[i - 1].pkg != links[i].pkg ? l.pkgs[links[i].pkg].label : "",
               links[i].path);
      for (size_t i = 0; i < nprop; i++)
        printf("  %6ld  %-24s %s\n", prop[i].priority, "(propagated)", prop[i].path);
    }
  frc_propagated_free(prop, nprop);
  if (fflush(stdout) != 0)
    return frc_error(err, "cannot write to stdout");
  return 0;
}

#define USAGE                                                                                      \
  "usage: flox-runc resolve OWNER/NAME[:N] [--token-file FILE] [--json], or flox-runc resolve "    \
  "--lockfile FILE [--system SYSTEM] [--mode run|dev] [--store-root DIR] [--json]"

int
frc_cmd_resolve(struct frc_ctx *ctx, frc_error_t *err)
{
  const char *refarg = NULL, *token_file = NULL, *lockfile = NULL, *system = NULL;
  const char *mode = NULL, *store_root = NULL;
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
      else if (strcmp(a, "--lockfile") == 0 && i + 1 < ctx->cl.nargs)
        lockfile = ctx->cl.args[++i];
      else if (strcmp(a, "--system") == 0 && i + 1 < ctx->cl.nargs)
        system = ctx->cl.args[++i];
      else if (strcmp(a, "--mode") == 0 && i + 1 < ctx->cl.nargs)
        mode = ctx->cl.args[++i];
      else if (strcmp(a, "--store-root") == 0 && i + 1 < ctx->cl.nargs)
        store_root = ctx->cl.args[++i];
      else if (a[0] != '-' && refarg == NULL)
        refarg = a;
      else
        return frc_error(err, USAGE);
    }
  if (mode && strcmp(mode, "run") != 0 && strcmp(mode, "dev") != 0)
    return frc_error(err, USAGE);
  if (lockfile && refarg == NULL && token_file == NULL)
    return resolve_lockfile(lockfile, system ? system : frc_nix_system(), mode, store_root, json,
                            err);
  if (refarg == NULL || lockfile || system || mode || store_root)
    return frc_error(err, USAGE);
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
