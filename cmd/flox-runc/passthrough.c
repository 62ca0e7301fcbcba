/* passthrough: every runc verb flox-runc does not handle, and handled calls
 * that turn out to concern a container flox-runc leaves alone.  A bare execv
 * of the real runtime: nothing but the node config is read before it. */
#include "flox-runc.h"
#include "runtime.h"
#include "util.h"

int
frc_cmd_passthrough(struct frc_ctx *ctx, frc_error_t *err)
{
  cleanup_runtime struct frc_runtime runtime = { 0 };

  if (frc_ctx_config(ctx, err) < 0)
    return -1;
  if (frc_runtime_locate(ctx->config.runtime, &runtime, err) < 0)
    return -1;
  return frc_runtime_exec(&runtime, ctx->cl.argv, err);
}
