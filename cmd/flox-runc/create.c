/* create, run and restore: lib/container.c decides from the bundle's annotations
 * whether the container is a Flox container and, if it is, materialises its
 * environment, rewrites the bundle's spec and records what exec and delete
 * need; then the real runtime gets the original argv (passthrough.c).  A
 * foreground `run` (no --detach, no --keep) deletes its container when it
 * exits, without a `delete` call: flox-runc runs the runtime as a child and
 * releases the container afterwards; so does a foreground `restore` (no
 * --detach), which runc runs as `run` runs.  A restore is a create from the
 * checkpoint's directory (--image-path, runc's default ./checkpoint). */
#include <stdlib.h>

#include "container.h"
#include "criu.h"
#include "flox-runc.h"

/* run's --preserve-fds N: the runtime child keeps fds 3..N+2 (it hands them
 * to the container); anything else above 2 is closed. */
static int
preserved_fds(const struct frc_ctx *ctx)
{
  char *end;
  long n;
  if (ctx->cl.preserve_fds == NULL)
    return 0;
  n = strtol(ctx->cl.preserve_fds, &end, 10);
  return *end == '\0' && n > 0 && n < (1 << 20) ? (int) n : 0;
}

int
frc_cmd_create(struct frc_ctx *ctx, frc_error_t *err)
{
  struct frc_container_call c = { &ctx->config, &ctx->log, ctx->cl.g.root, ctx->cl.id, NULL };
  bool restore = ctx->cl.verb == FRC_VERB_RESTORE;
  bool flox = false;

  if (restore)
    c.restore_image = ctx->cl.image_path ? ctx->cl.image_path : FRC_CRIU_DEFAULT_IMAGE;
  if (frc_ctx_config(ctx, err) < 0 || frc_container_create(&c, ctx->cl.bundle, &flox, err) < 0)
    return -1;
  if (flox && !ctx->cl.detach && ((ctx->cl.verb == FRC_VERB_RUN && !ctx->cl.keep) || restore))
    return frc_container_run(&c, ctx->cl.argv, preserved_fds(ctx), &ctx->exit_status, err);
  return frc_cmd_passthrough(ctx, err);
}
