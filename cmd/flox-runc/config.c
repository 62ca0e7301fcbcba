/* config: prints the effective node configuration (defaults filled in) and
 * the file it came from. */
#include <stdio.h>

#include "flox-runc.h"
#include "util.h"

int
frc_cmd_config(struct frc_ctx *ctx, frc_error_t *err)
{
  cleanup_free char *json = NULL;

  if (ctx->cl.nargs > 0)
    return frc_error(err, "`config` takes no arguments: run `flox-runc config`");
  if (frc_ctx_config(ctx, err) < 0)
    return -1;
  json = frc_config_to_json(&ctx->config);
  fprintf(stderr, "# %s %s\n", ctx->config.from_file ? "from" : "defaults (no file at)",
          ctx->config.path);
  fputs(json, stdout);
  fputc('\n', stdout);
  if (fflush(stdout) != 0)
    return frc_error(err, "cannot write to stdout");
  return 0;
}
