/* delete: the real runtime deletes the container first (run as a child,
 * same argv, stdio and environment); once the container is gone, release
 * what create took for it: the writable /nix overlay, the GC root on its
 * closure and the record (lib/record.c).  Idempotent: containerd calls
 * `delete` then `delete --force`, and a node that lost the runtime's state
 * still gets its roots released.  Containers without a record pass through,
 * except a pod sandbox whose containers had a FLOX_ENV_CACHE: it is removed
 * once the sandbox is gone (lib/envcache.c). */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envcache.h"
#include "flox-runc.h"
#include "mounts.h"
#include "proc.h"
#include "record.h"
#include "runtime.h"
#include "store.h"
#include "util.h"

/* Runs the runtime with argv (argv[0] replaced) and descriptors 0-2 plus
 * the keep_fds after them (run's --preserve-fds); returns its exit status. */
int
frc_run_runtime(const struct frc_runtime *rt, char **argv, bool quiet, int keep_fds,
                frc_error_t *err)
{
  /* While the runtime runs, flox-runc stays in between (it releases what
   * create took afterwards): signals meant for the runtime are handed on,
   * and flox-runc itself is not killed by them.  SIGINT and SIGQUIT from a
   * terminal already reach the runtime, which is in the same process group. */
  static const int forwarded[] = { SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 };
  sigset_t set, old;
  int status = 0;
  pid_t pid;

  sigemptyset(&set);
  for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
    sigaddset(&set, forwarded[i]);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGQUIT);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, &old);
  pid = fork();
  if (pid < 0)
    {
      int e = errno;
      sigprocmask(SIG_SETMASK, &old, NULL);
      return frc_error_errno(err, e, "cannot start the real runtime");
    }
  if (pid == 0)
    {
      frc_error_t ignored = NULL;
      sigprocmask(SIG_SETMASK, &old, NULL);
      if (quiet)
        {
          int fd = open("/dev/null", O_RDWR);
          if (fd >= 0)
            {
              dup2(fd, 1);
              dup2(fd, 2);
            }
        }
      /* flox-runc's and the engine's other descriptors stay out. */
      frc_close_fds_from(3 + keep_fds);
      frc_runtime_exec(rt, argv, &ignored);
      _exit(127);
    }
  for (;;)
    {
      struct timespec tick = { 1, 0 };
      pid_t w = waitpid(pid, &status, WNOHANG);
      int sig;
      if (w == pid)
        break;
      if (w < 0 && errno != EINTR)
        {
          int e = errno;
          sigprocmask(SIG_SETMASK, &old, NULL);
          return frc_error_errno(err, e, "cannot wait for the real runtime");
        }
      sig = sigtimedwait(&set, NULL, &tick);
      for (size_t i = 0; sig > 0 && i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        if (sig == forwarded[i])
          kill(pid, sig);
    }
  sigprocmask(SIG_SETMASK, &old, NULL);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Whether the runtime still knows the container (`state` succeeds). */
bool
frc_container_exists(struct frc_ctx *ctx, const struct frc_runtime *rt)
{
  frc_error_t ignored = NULL;
  char *argv[6];
  int n = 0, status;
  argv[n++] = NULL;
  if (ctx->cl.g.root)
    {
      argv[n++] = (char *) "--root";
      argv[n++] = (char *) ctx->cl.g.root;
    }
  argv[n++] = (char *) "state";
  argv[n++] = (char *) ctx->cl.id;
  argv[n] = NULL;
  status = frc_run_runtime(rt, argv, true, 0, &ignored);
  frc_error_release(&ignored);
  return status == 0;
}

int
frc_cmd_delete(struct frc_ctx *ctx, frc_error_t *err)
{
  cleanup_record struct frc_record rec = { 0 };
  cleanup_runtime struct frc_runtime rt = { 0 };
  bool found = false;
  int status;

  if (frc_ctx_config(ctx, err) < 0)
    return -1;
  if (frc_record_load(&ctx->config, ctx->cl.g.root, ctx->cl.id, &rec, &found, err) < 0)
    return -1;
  if (!found && !frc_env_cache_sandbox_exists(&ctx->config, ctx->cl.id))
    return frc_cmd_passthrough(ctx, err);
  if (frc_runtime_locate(ctx->config.runtime, &rt, err) < 0)
    return -1;
  if (!found)
    {
      /* a pod's sandbox: its containers' FLOX_ENV_CACHE goes with it */
      status = frc_run_runtime(&rt, ctx->cl.argv, false, 0, err);
      if (status < 0)
        return -1;
      ctx->exit_status = status;
      if (status != 0 && frc_container_exists(ctx, &rt))
        return 0;
      if (frc_env_cache_release_sandbox(&ctx->config, ctx->cl.id, err) < 0)
        return frc_error_wrap(err, "pod sandbox %s deleted, but", ctx->cl.id);
      frc_log(&ctx->log, FRC_LOG_DEBUG, "flox-runc: pod sandbox %s: removed its FLOX_ENV_CACHE",
              ctx->cl.id);
      return 0;
    }

  status = frc_run_runtime(&rt, ctx->cl.argv, false, 0, err);
  if (status < 0)
    return -1;
  if (status != 0 && frc_container_exists(ctx, &rt))
    {
      ctx->exit_status = status; /* e.g. delete of a running container without --force */
      return 0;
    }
  if (frc_release_container(ctx, &rec, err) < 0)
    return -1;
  ctx->exit_status = status;
  return 0;
}

int
frc_release_container(struct frc_ctx *ctx, const struct frc_record *rec, frc_error_t *err)
{
  if (rec->overlay && frc_overlay_remove(rec->overlay, err) < 0)
    return frc_error_wrap(err, "container %s deleted, but", rec->id);
  if (frc_gcroot_release(&ctx->config, "containers", rec->gcroot, err) < 0
      || (rec->env_cache_per_container
          && frc_env_cache_release_container(&ctx->config, rec->gcroot, err) < 0)
      || frc_record_remove(&ctx->config, rec, err) < 0)
    return frc_error_wrap(err, "container %s deleted, but", rec->id);
  frc_log(&ctx->log, FRC_LOG_DEBUG, "flox-runc: container %s: released its GC root%s", rec->id,
          rec->overlay ? " and writable /nix" : "");
  return 0;
}
