/* install [--host-root DIR] [--engine auto|containerd|crio] [--node-config FILE]
 *         [--containerd-config PATH] [--runtime-name NAME] [--binary FILE]
 *         [--restart-command CMD | --no-restart] [--uninstall]
 * puts flox-runc on a node and registers it with its engine (lib/install.c);
 * one line per step. */
#include <stdio.h>
#include <string.h>

#include "flox-runc.h"
#include "install.h"
#include "util.h"

#define USAGE                                                                                      \
  "usage: flox-runc install [--host-root DIR] [--engine auto|containerd|crio] "                    \
  "[--node-config FILE] [--containerd-config PATH] [--runtime-name NAME] [--binary FILE] "         \
  "[--restart-command CMD | --no-restart] [--uninstall]"

static void
print_step(enum frc_finding kind, const char *text, void *data)
{
  (void) data;
  printf("%-8s %s\n",
         kind == FRC_FINDING_OK ? "ok" : kind == FRC_FINDING_PROBLEM ? "WARNING" : "note", text);
  fflush(stdout);
}

int
frc_cmd_install(struct frc_ctx *ctx, frc_error_t *err)
{
  struct frc_install_opts o = { .report = print_step };

  for (int i = 0; i < ctx->cl.nargs; i++)
    {
      const char *a = ctx->cl.args[i];
      const char *v = i + 1 < ctx->cl.nargs ? ctx->cl.args[i + 1] : NULL;
      if (strcmp(a, "--uninstall") == 0)
        o.uninstall = true;
      else if (strcmp(a, "--no-restart") == 0)
        o.no_restart = true;
      else if (v && strcmp(a, "--host-root") == 0)
        o.host_root = v, i++;
      else if (v && strcmp(a, "--node-config") == 0)
        o.node_config = v, i++;
      else if (v && strcmp(a, "--containerd-config") == 0)
        o.containerd_config = v, i++;
      else if (v && strcmp(a, "--runtime-name") == 0)
        o.runtime_name = v, i++;
      else if (v && strcmp(a, "--binary") == 0)
        o.binary = v, i++;
      else if (v && strcmp(a, "--restart-command") == 0)
        o.restart_command = v, i++;
      else if (v && strcmp(a, "--engine") == 0)
        {
          if (strcmp(v, "auto") == 0)
            o.engine = FRC_INSTALL_AUTO;
          else if (strcmp(v, "containerd") == 0)
            o.engine = FRC_INSTALL_CONTAINERD;
          else if (strcmp(v, "crio") == 0)
            o.engine = FRC_INSTALL_CRIO;
          else
            return frc_error(err, "--engine %s: use auto, containerd or crio", v);
          i++;
        }
      else
        return frc_error(err, USAGE);
    }
  if (o.no_restart && o.restart_command)
    return frc_error(err, "--no-restart and --restart-command exclude each other: pick one");
  return frc_install(&o, err);
}
