/* bind-closure ROOTFS NIX_SOURCE STORE_PREFIX STORE_PATH...: the
 * createContainer hook that create puts in a Flox container's spec; the
 * runtime runs it in the container's mount namespace before pivot_root, and
 * it binds the closure paths read-only into the container's /nix
 * (lib/bindhook.h).  Not for people: no config, no network. */
#include "bindhook.h"
#include "flox-runc.h"

int
frc_cmd_bind_closure(struct frc_ctx *ctx, frc_error_t *err)
{
  return frc_bindhook_run(ctx->cl.nargs, ctx->cl.args, false, err);
}
