/* doctor [--containerd-config FILE] [--crio-config FILE] [--token-file FILE]
 *        [--environment OWNER/NAME[:N]]
 * checks a node the way a platform engineer would before scheduling pods
 * (lib/doctor.c).  One line per finding, each problem with its fix; exit
 * status 1 when there is a problem. */
#include <stdio.h>
#include <string.h>

#include "doctor.h"
#include "flox-runc.h"
#include "token.h"
#include "util.h"

#define USAGE                                                                                      \
  "usage: flox-runc doctor [--containerd-config FILE] [--crio-config FILE] [--token-file FILE] "   \
  "[--environment OWNER/NAME[:N]]"

static void
print_finding(enum frc_finding kind, const char *text, void *data)
{
  (void) data;
  printf("%-8s %s\n",
         kind == FRC_FINDING_OK ? "ok" : kind == FRC_FINDING_PROBLEM ? "PROBLEM" : "note", text);
}

int
frc_cmd_doctor(struct frc_ctx *ctx, frc_error_t *err)
{
  struct frc_doctor_opts o = { .report = print_finding };
  const char *token_file = NULL;
  cleanup_token char *token = NULL;
  int problems;

  for (int i = 0; i < ctx->cl.nargs; i++)
    {
      const char *a = ctx->cl.args[i];
      const char *v = i + 1 < ctx->cl.nargs ? ctx->cl.args[i + 1] : NULL;
      if (v && strcmp(a, "--containerd-config") == 0)
        o.containerd_config = v, i++;
      else if (v && strcmp(a, "--crio-config") == 0)
        o.crio_config = v, i++;
      else if (v && strcmp(a, "--token-file") == 0)
        token_file = v, i++;
      else if (v && strcmp(a, "--environment") == 0)
        o.environment = v, i++;
      else
        return frc_error(err, USAGE);
    }
  if (frc_ctx_config(ctx, err) < 0)
    {
      print_finding(FRC_FINDING_PROBLEM, (*err)->msg, NULL);
      fflush(stdout);
      return -1;
    }
  if (token_file && frc_token_read_file(token_file, &token, err) < 0)
    return -1;
  o.token = token;
  problems = frc_doctor_run(&ctx->config, &o);
  printf("%d problem%s\n", problems, problems == 1 ? "" : "s");
  if (fflush(stdout) != 0)
    return frc_error(err, "cannot write to stdout");
  ctx->exit_status = problems ? 1 : 0;
  return 0;
}
