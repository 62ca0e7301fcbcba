/* bind-closure ROOT NIX_SOURCE STORE_PREFIX ENTRY... (store paths,
 * --view-store DIR, the tree, --bind-ro/--bind-rw SRC DST): the
 * createContainer hook that create puts in a Flox container's spec; the
 * runtime runs it in the container's mount namespace before pivot_root, and
 * it binds the closure paths read-only into the container's /nix, and the
 * environment's tree, FLOX_ENV_CACHE and the CA bundle (lib/bindhook.h).
 * Not for people: no config, no network. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "bindhook.h"
#include "flox-runc.h"
#include "json.h"
#include "util.h"

#define STATE_MAX (64u << 10)

/* The state the runtime writes to the hook's stdin ("bundle" resolves a
 * relative ROOT), read to the end in any case: crun fails the create
 * ("writing to pipe: Broken pipe") when the hook has exited before it
 * wrote.  A pipe only: never wait on a terminal.  Returns the bundle
 * (malloc'd) or NULL. */
static char *
read_state_bundle(void)
{
  struct stat st;
  char *buf = NULL, *bundle = NULL;
  size_t len = 0;
  yajl_val state = NULL;
  frc_error_t ignored = NULL;

  if (fstat(0, &st) < 0 || !S_ISFIFO(st.st_mode))
    return NULL;
  buf = xmalloc0(STATE_MAX + 1);
  for (;;)
    {
      char sink[4096];
      char *at = len < STATE_MAX ? buf + len : sink;
      size_t room = len < STATE_MAX ? STATE_MAX - len : sizeof(sink);
      ssize_t n = read(0, at, room);
      if (n == 0 || (n < 0 && errno != EINTR))
        break;
      if (n > 0 && at == buf + len)
        len += (size_t) n;
    }
  buf[len] = '\0';
  if (len > 0 && frc_json_parse(buf, len, &state, &ignored) == 0)
    {
      const char *b = frc_json_get_string(state, "bundle");
      bundle = b ? xstrdup(b) : NULL;
    }
  frc_error_release(&ignored);
  frc_json_freep(&state);
  free(buf);
  return bundle;
}

int
frc_cmd_bind_closure(struct frc_ctx *ctx, frc_error_t *err)
{
  cleanup_free char *bundle = read_state_bundle();
  return frc_bindhook_run(bundle, ctx->cl.nargs, ctx->cl.args, false, err);
}
