/* help: `flox-runc --help` (or -h) with no verb: what flox-runc adds to the
 * runtime (its own verbs and options), then the real runtime's own help (by
 * exec, as version.c does for --version).  Only this exact call is handled:
 * every other call that carries --help (`flox-runc create --help`, ...) is
 * the runtime's business (lib/argv.c hands `VERB --help` to it). */
#include <stdio.h>

#include "flox-runc.h"
#include "runtime.h"
#include "util.h"

#include "frc-build-config.h"

static const char help_text[] =
  "flox-runc " FLOX_RUNC_VERSION ": an OCI runtime that runs Flox environments, in place of runc\n"
  "\n"
  "Engines call flox-runc exactly as they call runc.  It handles `create` and\n"
  "`run` (a container with a flox.dev/environment annotation gets that Flox\n"
  "environment), `exec` (execs into it get its activation), `delete`\n"
  "(releases what create took), `restore` (a create from a checkpoint) and\n"
  "`checkpoint` (of a Flox container: what CRIU and the restore need); every\n"
  "other command and option goes to the real runtime unchanged.\n"
  "\n"
  "flox-runc's own commands, for people running nodes:\n"
  "  resolve OWNER/NAME[:N] [--token-file FILE] [--json]\n"
  "        the generation and packages FloxHub serves for an environment\n"
  "  resolve --lockfile FILE [--system S] [--mode run|dev] [--store-root DIR] [--json]\n"
  "        what an environment of that manifest.lock links, by Flox's rules\n"
  "  prefetch OWNER/NAME[:N] [--mode run|dev] [--token-file FILE]\n"
  "        materialise an environment on this node before pods need it (default\n"
  "        mode: the manifest's options.activate.mode, else run)\n"
  "  gc [--max-age SECONDS] [--dry-run]\n"
  "        evict built environments no container uses\n"
  "  doctor [--containerd-config FILE] [--crio-config FILE] [--token-file FILE]\n"
  "         [--environment OWNER/NAME[:N]]\n"
  "        check this node: real runtime, Nix, state directory, FloxHub,\n"
  "        substituters, and the containerd / CRI-O registration\n"
  "  config\n"
  "        print the effective node configuration\n"
  "  install [--host-root DIR] [--engine auto|containerd|crio] [--node-config FILE]\n"
  "          [--containerd-config PATH] [--runtime-name NAME] [--binary FILE]\n"
  "          [--restart-command CMD | --no-restart] [--uninstall]\n"
  "        put flox-runc and its node config on this node (or under DIR) and register\n"
  "        it with containerd or CRI-O, validated by the engine; --uninstall undoes it\n"
  "\n"
  "flox-runc's options: none of its own on runtime calls.  The node configuration\n"
  "is /etc/flox-runc/config.json, or the file named by FLOX_RUNC_CONFIG\n"
  "(docs/configuration.md); pods choose their environment with flox.dev/*\n"
  "annotations.  `flox-runc --version` prints both versions.\n"
  "\n";

int
frc_cmd_help(struct frc_ctx *ctx, frc_error_t *err)
{
  cleanup_runtime struct frc_runtime runtime = { 0 };
  char *argv[] = { NULL, (char *) "--help", NULL };

  fputs(help_text, stdout);
  fflush(stdout);
  if (frc_ctx_config(ctx, err) < 0 || frc_runtime_locate(ctx->config.runtime, &runtime, err) < 0)
    return -1;
  printf("The real runtime, %s:\n\n", runtime.path);
  fflush(stdout);
  return frc_runtime_exec(&runtime, argv, err);
}
