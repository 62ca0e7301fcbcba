/* checkpoint: of a Flox container (one flox-runc holds a record of), first
 * tells CRIU the closure binds of flox-runc's createContainer hook and
 * records the environment's generation in the checkpoint's directory
 * (lib/criu.h); then, as for every other container, the real runtime gets
 * the original argv.  Without --image-path runc writes ./checkpoint. */
#include "criu.h"
#include "flox-runc.h"

int
frc_cmd_checkpoint(struct frc_ctx *ctx, frc_error_t *err)
{
  const char *image = ctx->cl.image_path ? ctx->cl.image_path : FRC_CRIU_DEFAULT_IMAGE;
  bool flox = false;

  if (frc_ctx_config(ctx, err) < 0
      || frc_criu_checkpoint(&ctx->config, ctx->cl.g.root ? ctx->cl.g.root : "", ctx->cl.id, image,
                             &flox, err)
             < 0)
    return -1;
  return frc_cmd_passthrough(ctx, err);
}
