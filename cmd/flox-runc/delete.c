/* delete: lib/container.c runs the real runtime's delete as a child (same
 * argv, stdio and environment) and, once the container is gone, releases
 * what create took for it; the delete of a pod sandbox whose containers had
 * a FLOX_ENV_CACHE removes that.  Idempotent: containerd calls `delete` then
 * `delete --force`.  Any other id passes straight through. */
#include "container.h"
#include "flox-runc.h"

int
frc_cmd_delete(struct frc_ctx *ctx, frc_error_t *err)
{
  struct frc_container_call c = { &ctx->config, &ctx->log, ctx->cl.g.root, ctx->cl.id, NULL };
  bool ran = false;

  if (frc_ctx_config(ctx, err) < 0
      || frc_container_delete(&c, ctx->cl.argv, &ran, &ctx->exit_status, err) < 0)
    return -1;
  return ran ? 0 : frc_cmd_passthrough(ctx, err);
}
