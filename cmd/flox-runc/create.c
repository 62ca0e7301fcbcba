/* create and run: decide from the bundle's annotations whether the container
 * is a Flox container; if it is, prepare it and rewrite the bundle, then exec
 * the real runtime with the original argv.
 *
 *   lib/spec.c       load <bundle>/config.json
 *   lib/select.c     identity (sandbox, name) and the decision
 *   lib/annotations.c  the flox.dev/... values
 *   passthrough.c    exec the real runtime
 *
 * A passthrough container's bundle is never written.  A failure before the
 * spec is saved leaves config.json exactly as the engine wrote it.
 */
#include <string.h>

#include "flox-runc.h"
#include "select.h"
#include "spec.h"
#include "util.h"

int
frc_cmd_create(struct frc_ctx *ctx, frc_error_t *err)
{
  cleanup_spec struct frc_spec spec = { 0 };
  cleanup_decision struct frc_decision d = { 0 };
  char ref[256];

  if (frc_ctx_config(ctx, err) < 0)
    return -1;
  if (frc_spec_load(&spec, ctx->cl.bundle, err) < 0)
    return -1;
  if (frc_decide(frc_json_get(spec.doc.root, "annotations"), &ctx->config, &d, err) < 0)
    return frc_error_wrap(err, "container %s", ctx->cl.id);

  if (d.action == FRC_ACTION_PASSTHROUGH)
    {
      frc_log(&ctx->log, FRC_LOG_DEBUG, "flox-runc: container %s passes through: %s", ctx->cl.id,
              d.reason);
      return frc_cmd_passthrough(ctx, err);
    }

  frc_envref_format(&d.ann.env, ref, sizeof(ref));
  frc_log(&ctx->log, FRC_LOG_DEBUG, "flox-runc: container %s: environment %s, mode %s", ctx->cl.id,
          ref, frc_mode_name(d.ann.mode));
  /* Resolution (FloxHub), materialisation (Nix) and projection into the
   * spec come next; until they exist a Flox container fails closed rather
   * than starting without its environment. */
  return frc_error(err,
                   "container %s: running Flox environments (%s) is not implemented in this build "
                   "yet: list the container in " FRC_ANN_SKIP_CONTAINERS " or use another "
                   "runtimeClass",
                   ctx->cl.id, ref);
}
