/* flox-runc: an OCI runtime that runs Flox environments, in place of runc.
 *
 * The path of every call: parse argv (lib/argv.c), then one verb file of this
 * directory.  Errors come back here as one frc_error_t and are reported once,
 * to the --log file and stderr (lib/log.c).
 */
#include <stdio.h>
#include <string.h>

#include "flox-runc.h"
#include "runtime.h"
#include "util.h"

int
frc_ctx_config(struct frc_ctx *ctx, frc_error_t *err)
{
  if (ctx->config_loaded)
    return 0;
  if (frc_config_load(&ctx->config, NULL, err) < 0)
    return -1;
  ctx->config_loaded = true;
  return 0;
}

static int
dispatch(struct frc_ctx *ctx, frc_error_t *err)
{
  /* The hook runs no runtime, and crun hands hooks its own environment
   * (with the loop guard of a wrapper runtime in it). */
  if (ctx->cl.verb != FRC_VERB_BIND_CLOSURE && frc_runtime_check_loop(err) < 0)
    return -1;
  if (ctx->cl.g.version && ctx->cl.verb == FRC_VERB_NONE)
    return frc_cmd_version(ctx, err);
  if (ctx->cl.g.help && ctx->cl.verb == FRC_VERB_NONE)
    return frc_cmd_help(ctx, err);
  if (ctx->cl.verb_help)
    return frc_cmd_passthrough(ctx, err);
  switch (ctx->cl.verb)
    {
    case FRC_VERB_CREATE:
    case FRC_VERB_RUN:
    case FRC_VERB_RESTORE:
      return frc_cmd_create(ctx, err);
    case FRC_VERB_CHECKPOINT:
      return frc_cmd_checkpoint(ctx, err);
    case FRC_VERB_EXEC:
      return frc_cmd_exec(ctx, err);
    case FRC_VERB_DELETE:
      return frc_cmd_delete(ctx, err);
    case FRC_VERB_CONFIG:
      return frc_cmd_config(ctx, err);
    case FRC_VERB_RESOLVE:
      return frc_cmd_resolve(ctx, err);
    case FRC_VERB_PREFETCH:
      return frc_cmd_prefetch(ctx, err);
    case FRC_VERB_GC:
      return frc_cmd_gc(ctx, err);
    case FRC_VERB_DOCTOR:
      return frc_cmd_doctor(ctx, err);
    case FRC_VERB_INSTALL:
      return frc_cmd_install(ctx, err);
    case FRC_VERB_BIND_CLOSURE:
      return frc_cmd_bind_closure(ctx, err);
    default:
      return frc_cmd_passthrough(ctx, err);
    }
}

int
main(int argc, char **argv)
{
  struct frc_ctx ctx = { 0 };
  cleanup_error frc_error_t err = NULL;
  int parsed = frc_cmdline_parse(argc, argv, &ctx.cl, &err);

  frc_logger_init(&ctx.log, &ctx.cl.g);
  if (parsed < 0)
    {
      /* Malformed flags of exec, delete or checkpoint: nothing of
       * flox-runc's is at stake, the real runtime reports them.  create,
       * run and restore fail closed. */
      if (ctx.cl.verb == FRC_VERB_EXEC || ctx.cl.verb == FRC_VERB_DELETE
          || ctx.cl.verb == FRC_VERB_CHECKPOINT)
        {
          frc_error_release(&err);
          ctx.cl.verb = FRC_VERB_PASSTHROUGH;
        }
      else
        goto fail;
    }
  if (dispatch(&ctx, &err) == 0)
    {
      if (ctx.config_loaded)
        frc_config_release(&ctx.config);
      return ctx.exit_status;
    }
fail:
  frc_log(&ctx.log, FRC_LOG_ERROR, "flox-runc: %s", err ? err->msg : "unknown error");
  if (ctx.config_loaded)
    frc_config_release(&ctx.config);
  return err ? err->status : 1;
}
