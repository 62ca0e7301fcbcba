/* exec: an exec into a Flox container runs with the container's activation
 * (lib/container.c rewrites the --process file atomically from the record
 * create wrote), then the real runtime is exec'd with the original argv.
 * Containers without a record (passthrough ones), and those in
 * flox.dev/skip-containers-exec, pass straight through.  No network, no Nix.
 *
 * An exec with an inline command instead of --process (people typing
 * `flox-runc exec ID cmd`) passes through: runc builds that process from the
 * container's spec, which create already activated (PATH, FLOX_ENV, vars
 * without anything to evaluate); vars bash evaluates and the hook do not
 * reach it. */
#include "container.h"
#include "flox-runc.h"

int
frc_cmd_exec(struct frc_ctx *ctx, frc_error_t *err)
{
  struct frc_container_call c = { &ctx->config, &ctx->log, ctx->cl.g.root, ctx->cl.id, NULL };
  bool flox = false;

  if (frc_ctx_config(ctx, err) < 0 || frc_container_exec(&c, ctx->cl.process, &flox, err) < 0)
    return -1;
  return frc_cmd_passthrough(ctx, err);
}
