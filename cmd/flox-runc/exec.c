/* exec: an exec into a Flox container runs with the container's activation
 * (lib/activate.c, from the record create wrote: lib/record.c): the
 * --process file is rewritten atomically, then the real runtime is exec'd
 * with the original argv.  Containers without a record (passthrough ones),
 * and those in flox.dev/skip-containers-exec, pass straight through.  No
 * network, no Nix.
 *
 * An exec with an inline command instead of --process (people typing
 * `flox-runc exec ID cmd`) passes through: runc builds that process from the
 * container's spec, which create already activated (PATH, FLOX_ENV, vars
 * without anything to evaluate); vars bash evaluates and the hook do not
 * reach it. */
#include <string.h>

#include "activate.h"
#include "flox-runc.h"
#include "record.h"
#include "spec.h"
#include "store.h"
#include "util.h"

int
frc_cmd_exec(struct frc_ctx *ctx, frc_error_t *err)
{
  cleanup_record struct frc_record rec = { 0 };
  struct frc_json_doc doc __attribute__((cleanup(frc_json_doc_release))) = { 0 };
  struct frc_activation act;
  bool found = false;

  if (frc_ctx_config(ctx, err) < 0)
    return -1;
  if (frc_record_load(&ctx->config, ctx->cl.g.root, ctx->cl.id, &rec, &found, err) < 0)
    return -1;
  if (!found || rec.skip_exec || ctx->cl.process == NULL)
    return frc_cmd_passthrough(ctx, err);

  if (frc_process_file_load(&doc, ctx->cl.process, err) < 0)
    return -1;
  frc_record_activation(&rec, &act);
  act.store_prefix = ctx->config.store_prefix;
  act.floxhub_url = ctx->config.floxhub_url;
  if (frc_activate_process(&act, doc.root, err) < 0)
    return frc_error_wrap(err, "exec into container %s", ctx->cl.id);
  if (frc_json_doc_save(&doc, err) < 0)
    return -1;
  return frc_cmd_passthrough(ctx, err);
}
