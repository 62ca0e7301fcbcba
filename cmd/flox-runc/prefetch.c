/* prefetch OWNER/NAME[:N] [--mode run|dev] [--token-file FILE]: resolve the
 * environment and materialise it on this node exactly as a create does
 * (lib/container.h frc_environment_prepare), so that the first pod starts
 * warm.  Prints the generation and FLOX_ENV. */
#include <stdio.h>
#include <string.h>

#include "container.h"
#include "flox-runc.h"
#include "token.h"
#include "util.h"

#define USAGE "usage: flox-runc prefetch OWNER/NAME[:N] [--mode run|dev] [--token-file FILE]"

int
frc_cmd_prefetch(struct frc_ctx *ctx, frc_error_t *err)
{
  const char *refarg = NULL, *token_file = NULL, *mode = NULL;
  struct frc_envref ref;
  cleanup_token char *token = NULL;
  cleanup_prepared struct frc_prepared p = { 0 };
  struct frc_prepare_request req = { 0 };

  for (int i = 0; i < ctx->cl.nargs; i++)
    {
      const char *a = ctx->cl.args[i];
      if (strcmp(a, "--mode") == 0 && i + 1 < ctx->cl.nargs)
        mode = ctx->cl.args[++i];
      else if (strcmp(a, "--token-file") == 0 && i + 1 < ctx->cl.nargs)
        token_file = ctx->cl.args[++i];
      else if (a[0] != '-' && refarg == NULL)
        refarg = a;
      else
        return frc_error(err, USAGE);
    }
  if (refarg == NULL || (mode && strcmp(mode, "run") != 0 && strcmp(mode, "dev") != 0))
    return frc_error(err, USAGE);
  if (frc_envref_parse(refarg, &ref, err) < 0 || frc_ctx_config(ctx, err) < 0)
    return -1;
  if (token_file && frc_token_load_checked(token_file, &token, err) < 0)
    return -1;

  req.config = &ctx->config;
  req.log = &ctx->log;
  req.ref = &ref;
  req.token = token;
  /* Without --mode, the mode a pod without the annotation gets. */
  req.has_mode = mode != NULL;
  req.mode = mode && strcmp(mode, "dev") == 0 ? FRC_MODE_DEV : FRC_MODE_RUN;
  if (frc_environment_prepare(&req, &p, err) < 0)
    return -1;
  printf("environment: %s/%s generation %u (%s)\n", ref.owner, ref.name, p.resolved.generation,
         frc_mode_name(p.mode));
  printf("FLOX_ENV:    %s\n", p.env.path);
  printf("status:      %s\n", p.env.built ? "built now" : "already on this node");
  return fflush(stdout) == 0 ? 0 : frc_error(err, "cannot write to stdout");
}
