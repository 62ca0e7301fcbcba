/* bind-closure ROOTFS NIX_SOURCE STORE_PREFIX STORE_PATH...: the
 * createContainer hook that create puts in a Flox container's spec; the
 * runtime runs it in the container's mount namespace before pivot_root, and
 * it binds the closure paths read-only into the container's /nix
 * (lib/bindhook.h).  Not for people: no config, no network. */
#include <errno.h>
#include <unistd.h>
#include <sys/stat.h>

#include "bindhook.h"
#include "flox-runc.h"

/* The runtime writes the container's state to the hook's stdin, and crun
 * fails the create ("writing to pipe: Broken pipe") when the hook has exited
 * before it wrote: read it to the end first (a pipe only: never wait on a
 * terminal). */
static void
drain_stdin(void)
{
  struct stat st;
  char buf[4096];
  if (fstat(0, &st) < 0 || !S_ISFIFO(st.st_mode))
    return;
  for (;;)
    {
      ssize_t n = read(0, buf, sizeof(buf));
      if (n == 0 || (n < 0 && errno != EINTR))
        return;
    }
}

int
frc_cmd_bind_closure(struct frc_ctx *ctx, frc_error_t *err)
{
  drain_stdin();
  return frc_bindhook_run(ctx->cl.nargs, ctx->cl.args, false, err);
}
