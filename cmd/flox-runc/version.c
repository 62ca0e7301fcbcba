/* version: flox-runc's own version, then the real runtime's (by exec). */
#include <stdio.h>
#include <unistd.h>

#include "flox-runc.h"
#include "runtime.h"
#include "util.h"

#include "frc-build-config.h"

int
frc_cmd_version(struct frc_ctx *ctx, frc_error_t *err)
{
  cleanup_runtime struct frc_runtime runtime = { 0 };
  char *argv[] = { NULL, (char *) "--version", NULL };

  printf("flox-runc version %s\n", FLOX_RUNC_VERSION);
  fflush(stdout);
  if (frc_ctx_config(ctx, err) < 0 || frc_runtime_locate(ctx->config.runtime, &runtime, err) < 0)
    return -1;
  printf("real runtime: %s\n", runtime.path);
  fflush(stdout);
  return frc_runtime_exec(&runtime, argv, err);
}
