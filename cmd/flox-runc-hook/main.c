/* flox-runc-hook: the closure hook on its own, a small static program.
 *
 * create names it in a Flox container's hooks.createContainer instead of
 * `flox-runc bind-closure` when it lies beside the flox-runc binary
 * (lib/container.c): same arguments (`flox-runc-hook [--log PATH
 * --log-format FMT] bind-closure ROOT NIX_SOURCE STORE_PREFIX ...`, the
 * argv grammar of lib/argv.c), same code (lib/bindrun.c), same one-line
 * error to the runtime's --log and stderr.  Built with musl and linked
 * statically (meson option static_hook): the runtime execs it on every warm
 * create, and a static musl program starts in ~0.15 ms where flox-runc,
 * dynamically linked to glibc, takes ~0.5-0.75 ms (docs/performance.md,
 * "Lever: the closure hook as a static program"). */
#include <string.h>

#include "argv.h"
#include "bindrun.h"
#include "log.h"
#include "util.h"

int
main(int argc, char **argv)
{
  struct frc_cmdline cl = { 0 };
  struct frc_logger log;
  cleanup_error frc_error_t err = NULL;
  int parsed = frc_cmdline_parse(argc, argv, &cl, &err);

  frc_logger_init(&log, &cl.g);
  if (parsed == 0)
    {
      if (cl.verb != FRC_VERB_BIND_CLOSURE)
        frc_error(&err, "flox-runc-hook runs only as `flox-runc-hook " FRC_BINDHOOK_VERB
                        " ...`, the createContainer hook flox-runc writes; use flox-runc");
      else
        {
          cleanup_free char *bundle = frc_bindhook_state_bundle();
          if (frc_bindhook_run(bundle, cl.nargs, cl.args, false, &err) == 0)
            return 0;
        }
    }
  frc_log(&log, FRC_LOG_ERROR, "flox-runc: %s", err ? err->msg : "unknown error");
  return err ? err->status : 1;
}
