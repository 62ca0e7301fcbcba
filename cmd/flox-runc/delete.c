/* delete: release what create took for the container (GC roots, mounts,
 * state), idempotently, then exec the real runtime's delete.
 *
 * Nothing is taken at create yet, so delete passes straight through. */
#include "flox-runc.h"

int
frc_cmd_delete(struct frc_ctx *ctx, frc_error_t *err)
{
  return frc_cmd_passthrough(ctx, err);
}
