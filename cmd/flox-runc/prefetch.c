/* prefetch OWNER/NAME[:N] [--mode run|dev] [--token-file FILE]: resolve the
 * environment (lib/hub.c) and materialise it on this node
 * (lib/environment.c) exactly as a create would, so that the first pod
 * starts warm.  Prints the generation and FLOX_ENV. */
#include <stdio.h>
#include <string.h>

#include "environment.h"
#include "flox-runc.h"
#include "http.h"
#include "hub.h"
#include "lockfile.h"
#include "token.h"
#include "util.h"

#define USAGE "usage: flox-runc prefetch OWNER/NAME[:N] [--mode run|dev] [--token-file FILE]"

int
frc_cmd_prefetch(struct frc_ctx *ctx, frc_error_t *err)
{
  const char *refarg = NULL, *token_file = NULL, *mode = NULL;
  struct frc_envref ref;
  cleanup_token char *token = NULL;
  cleanup_resolved struct frc_resolved r = { 0 };
  cleanup_lockfile struct frc_lockfile lock = { 0 };
  cleanup_environment struct frc_environment env = { 0 };
  struct frc_resolve_request rreq = { 0 };
  struct frc_env_request ereq = { 0 };
  long long deadline;

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

  deadline = frc_now_ns() + ctx->config.deadline_seconds * 1000000000LL;
  rreq.config = &ctx->config;
  rreq.ref = &ref;
  rreq.token = token;
  rreq.log = &ctx->log;
  rreq.deadline_ns = deadline;
  if (frc_hub_resolve(&rreq, &r, err) < 0)
    return -1;
  if (frc_lockfile_parse(r.lockfile, r.lockfile_len, frc_nix_system(), &lock, err) < 0)
    return -1;
  ereq.config = &ctx->config;
  ereq.log = &ctx->log;
  ereq.deadline_ns = deadline;
  ereq.name = ref.name;
  /* Without --mode, the mode a pod without the annotation gets. */
  ereq.mode = frc_lock_pick_mode(&lock, mode != NULL,
                                 mode && strcmp(mode, "dev") == 0 ? FRC_MODE_DEV : FRC_MODE_RUN);
  ereq.lockfile = r.lockfile;
  ereq.lockfile_len = r.lockfile_len;
  ereq.lock = &lock;
  if (frc_environment_materialise(&ereq, &env, err) < 0)
    return -1;
  printf("environment: %s/%s generation %u (%s)\n", ref.owner, ref.name, r.generation,
         frc_mode_name(ereq.mode));
  printf("FLOX_ENV:    %s\n", env.path);
  printf("status:      %s\n", env.built ? "built now" : "already on this node");
  return fflush(stdout) == 0 ? 0 : frc_error(err, "cannot write to stdout");
}
