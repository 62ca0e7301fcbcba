/* bind-closure ROOT NIX_SOURCE STORE_PREFIX ENTRY... (store paths,
 * --view-store DIR, the tree, --bind-ro/--bind-rw SRC DST): the
 * createContainer hook that create puts in a Flox container's spec; the
 * runtime runs it in the container's mount namespace before pivot_root, and
 * it binds the closure paths read-only into the container's /nix, and the
 * environment's tree, FLOX_ENV_CACHE and the CA bundle (lib/bindhook.h).
 * Not for people: no config, no network. */
#include "bindrun.h"
#include "flox-runc.h"
#include "util.h"

int
frc_cmd_bind_closure(struct frc_ctx *ctx, frc_error_t *err)
{
  cleanup_free char *bundle = frc_bindhook_state_bundle();
  return frc_bindhook_run(bundle, ctx->cl.nargs, ctx->cl.args, false, err);
}
