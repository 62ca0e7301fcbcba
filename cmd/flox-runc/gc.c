/* gc [--max-age SECONDS] [--dry-run]: release what no live container needs
 * (lib/gc.c) and print one line per thing removed.  The node's Nix garbage
 * collector (nix-collect-garbage) then frees the store paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flox-runc.h"
#include "gc.h"
#include "runtime.h"
#include "util.h"

static void
print_line(const char *what, const char *path, void *data)
{
  printf("%s%s: %s\n", *(bool *) data ? "would remove " : "", what, path);
}

int
frc_cmd_gc(struct frc_ctx *ctx, frc_error_t *err)
{
  cleanup_runtime struct frc_runtime rt = { 0 };
  struct frc_gc_opts o = { 0 };
  struct frc_gc_stats st;
  bool dry = false;
  int rc;

  if (frc_ctx_config(ctx, err) < 0)
    return -1;
  o.max_age_seconds = ctx->config.gc_max_age_seconds;
  for (int i = 0; i < ctx->cl.nargs; i++)
    {
      const char *a = ctx->cl.args[i];
      char *end = NULL;
      if (strcmp(a, "--dry-run") == 0)
        dry = true;
      else if (strcmp(a, "--max-age") == 0 && i + 1 < ctx->cl.nargs)
        {
          o.max_age_seconds = strtol(ctx->cl.args[++i], &end, 10);
          if (end == NULL || *end != '\0' || o.max_age_seconds < 0)
            return frc_error(err, "--max-age takes a number of seconds");
        }
      else
        return frc_error(err, "usage: flox-runc gc [--max-age SECONDS] [--dry-run]");
    }
  if (frc_runtime_locate(ctx->config.runtime, &rt, err) < 0)
    return -1;
  o.config = &ctx->config;
  o.runtime = &rt;
  o.log = &ctx->log;
  o.dry_run = dry;
  o.report = print_line;
  o.data = &dry;
  /* One failure does not stop the rest: the summary is printed either way. */
  rc = frc_gc_run(&o, &st, err);
  printf("%s%u container records, %u overlays, %u container roots, %u environments, %u leftovers, "
         "%u env caches, %u shared symlinks\n",
         dry ? "would remove " : "removed ", st.containers, st.overlays, st.container_roots,
         st.environments, st.leftovers, st.env_caches, st.shared_links);
  if (fflush(stdout) != 0 && rc == 0)
    return frc_error(err, "cannot write to stdout");
  return rc;
}
