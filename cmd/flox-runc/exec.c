/* exec: for a Flox container, rewrite the --process file so the command runs
 * with the container's activation; every other exec passes through.
 *
 * The per-container record written at create decides; no container has one
 * until environments are materialised, so every exec passes through. */
#include "flox-runc.h"

int
frc_cmd_exec(struct frc_ctx *ctx, frc_error_t *err)
{
  return frc_cmd_passthrough(ctx, err);
}
