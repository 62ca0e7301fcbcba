#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"
#include "proc.h"
#include "util.h"

#define MAX_STDOUT (16u << 20)
#define LINE_MAX_BYTES 4096
#define KEEP_LINES 4

extern char **environ;

static char **
build_env(const char *const *extra)
{
  size_t n = 0, m = 0;
  char **env;
  while (environ[n])
    n++;
  while (extra && extra[m])
    m++;
  env = xmalloc0((n + m + 1) * sizeof(char *));
  n = 0;
  /* An extra variable replaces flox-runc's own of the same name. */
  for (char **e = environ; *e; e++)
    {
      size_t len = strcspn(*e, "=");
      bool replaced = false;
      for (size_t i = 0; i < m && !replaced; i++)
        replaced = strncmp(extra[i], *e, len) == 0 && extra[i][len] == '=';
      if (!replaced)
        env[n++] = *e;
    }
  if (m > 0)
    memcpy(env + n, extra, m * sizeof(char *));
  return env;
}

struct line_buf
{
  char buf[LINE_MAX_BYTES];
  size_t len;
  char *kept[KEEP_LINES];
  size_t nkept;
};

static void
emit_line(struct line_buf *lb, const struct frc_proc *p)
{
  lb->buf[lb->len] = '\0';
  if (lb->len > 0)
    {
      if (p->on_stderr_line)
        p->on_stderr_line(lb->buf, p->cb_data);
      if (lb->nkept == KEEP_LINES)
        {
          free(lb->kept[0]);
          memmove(lb->kept, lb->kept + 1, (KEEP_LINES - 1) * sizeof(char *));
          lb->nkept--;
        }
      lb->kept[lb->nkept++] = xstrdup(lb->buf);
    }
  lb->len = 0;
}

static void
feed(struct line_buf *lb, const char *data, size_t n, const struct frc_proc *p)
{
  for (size_t i = 0; i < n; i++)
    {
      if (data[i] == '\n' || data[i] == '\r')
        emit_line(lb, p);
      else if (lb->len < LINE_MAX_BYTES - 1)
        lb->buf[lb->len++] = data[i];
    }
}

void
frc_close_fds_from(int first)
{
  struct rlimit rl;
  long max = 1 << 20;
  if (close_range((unsigned) first, ~0u, 0) == 0)
    return;
  /* Kernels before 5.9: every possible descriptor. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t) max)
    max = (long) rl.rlim_cur;
  for (long fd = first; fd < max; fd++)
    close((int) fd);
}

int
frc_proc_detach(int *keep, size_t n)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  sigset_t none;
  int fds[8], nul, last = 2;
  pid_t pid;

  if (n > 8)
    return -1;
  if ((pid = fork()) < 0)
    return -1;
  if (pid > 0)
    {
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
      return 1;
    }
  /* here what the caller must not wait on past this child: its fds */
  setsid();
  for (size_t i = 0; i < n; i++)
    if ((keep[i] = fds[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, 3)) < 0)
      _exit(0);
  nul = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (nul >= 0)
    {
      dup2(nul, 0);
      dup2(nul, 1);
      dup2(nul, 2);
    }
  /* every descriptor above 2 but the copies, closed gap by gap */
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && fds[j - 1] > fds[j]; j--)
      {
        int t = fds[j];
        fds[j] = fds[j - 1];
        fds[j - 1] = t;
      }
  for (size_t i = 0; i < n; i++)
    {
      if (fds[i] > last + 1)
        close_range((unsigned) last + 1, (unsigned) fds[i] - 1, 0);
      last = fds[i];
    }
  frc_close_fds_from(last + 1);
  if (fork() != 0)
    _exit(0);
  /* the rest in the grandchild, which nobody waits for */
  if (chdir("/") < 0)
    _exit(0);
  /* the defaults before the mask is emptied: no handler of the caller's
   * runs for a signal that was pending */
  for (int sig = 1; sig < NSIG; sig++)
    sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP, libc's own: EINVAL */
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  return 0;
}

static void __attribute__((noreturn))
child(const struct frc_proc *p, int out_fd, int err_fd, char **env)
{
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (p->stdin_fd > 2)
    dup2(p->stdin_fd, 0);
  else if (p->stdin_path)
    {
      int in = open(p->stdin_path, O_RDONLY | O_CLOEXEC);
      if (in < 0)
        _exit(127);
      dup2(in, 0);
    }
  else if (devnull >= 0)
    dup2(devnull, 0);
  dup2(out_fd >= 0 ? out_fd : devnull, 1);
  dup2(err_fd, 2);
  /* Close everything else: the engine's fds (console sockets, pipes), at
   * any number, must not leak into the helper. */
  frc_close_fds_from(3);
  signal(SIGPIPE, SIG_DFL);
  execve(p->argv[0], (char *const *) p->argv, env);
  _exit(127);
}

/* A started child: what frc_proc_finish needs to read it to the end. */
struct frc_proc_running
{
  const struct frc_proc *p;
  pid_t pid;
  int out_fd, err_fd; /* -1 once ended */
  struct sigaction old_pipe;
  /* what was read so far (frc_proc_wait_stdout, then frc_proc_finish) */
  struct line_buf lb;
  char *out;
  size_t out_len;
  int timed_out;
};

int
frc_proc_start(const struct frc_proc *p, struct frc_proc_running **run, frc_error_t *err)
{
  int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
  cleanup_free char **env = build_env(p->extra_env);
  struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe;
  struct frc_proc_running *rp;
  pid_t pid;

  *run = NULL;
  if (pipe2(err_pipe, O_CLOEXEC) < 0 || (p->capture_stdout && pipe2(out_pipe, O_CLOEXEC) < 0))
    {
      int e = errno;
      for (int i = 0; i < 2; i++)
        {
          frc_closep(&err_pipe[i]);
          frc_closep(&out_pipe[i]);
        }
      return frc_error_errno(err, e, "cannot create a pipe");
    }
  sigaction(SIGPIPE, &ign, &old_pipe);
  pid = fork();
  if (pid < 0)
    {
      int e = errno;
      for (int i = 0; i < 2; i++)
        {
          frc_closep(&err_pipe[i]);
          frc_closep(&out_pipe[i]);
        }
      sigaction(SIGPIPE, &old_pipe, NULL);
      return frc_error_errno(err, e, "cannot start `%s`", p->argv[0]);
    }
  if (pid == 0)
    child(p, out_pipe[1], err_pipe[1], env);
  setpgid(pid, pid);
  close(err_pipe[1]);
  if (out_pipe[1] >= 0)
    close(out_pipe[1]);
  rp = xmalloc0(sizeof(*rp));
  rp->p = p;
  rp->pid = pid;
  rp->out_fd = out_pipe[0];
  rp->err_fd = err_pipe[0];
  rp->old_pipe = old_pipe;
  *run = rp;
  return 0;
}

/* Reads the child's stderr and stdout until both end, the deadline
 * passes (the group killed), or done says that stdout is complete: true
 * then. */
static bool
pump(struct frc_proc_running *run, bool (*done)(const char *out, size_t len, void *data), void *data)
{
  const struct frc_proc *p = run->p;
  pid_t pid = run->pid;

  while (!run->timed_out && (run->err_fd >= 0 || run->out_fd >= 0))
    {
      struct pollfd fds[2] = { { run->err_fd, POLLIN, 0 }, { run->out_fd, POLLIN, 0 } };
      int timeout = -1, n;
      char buf[8192];
      if (p->deadline_ns)
        {
          long long left = (p->deadline_ns - frc_now_ns()) / 1000000LL;
          if (left <= 0)
            {
              kill(-pid, SIGKILL);
              kill(pid, SIGKILL);
              run->timed_out = 1;
              break;
            }
          timeout = left > 1000 ? 1000 : (int) left;
        }
      n = poll(fds, 2, timeout);
      if (n < 0 && errno != EINTR)
        break;
      for (int i = 0; i < 2; i++)
        {
          ssize_t got;
          if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
          got = read(fds[i].fd, buf, sizeof(buf));
          if (got <= 0)
            {
              if (got < 0 && errno == EINTR)
                continue;
              close(fds[i].fd);
              if (i == 0)
                run->err_fd = -1;
              else
                run->out_fd = -1;
              continue;
            }
          if (i == 0)
            feed(&run->lb, buf, (size_t) got, p);
          else if (run->out_len + (size_t) got <= MAX_STDOUT)
            {
              run->out = xrealloc(run->out, run->out_len + (size_t) got + 1);
              memcpy(run->out + run->out_len, buf, (size_t) got);
              run->out_len += (size_t) got;
              run->out[run->out_len] = '\0';
              if (done && done(run->out, run->out_len, data))
                return true;
            }
        }
    }
  return false;
}

int
frc_proc_wait_stdout(struct frc_proc_running *run,
                     bool (*done)(const char *out, size_t len, void *data), void *data)
{
  return pump(run, done, data) ? 1 : 0;
}

int
frc_proc_finish(struct frc_proc_running *run, struct frc_proc_result *r)
{
  const struct frc_proc *p = run->p;
  struct line_buf *lbp = &run->lb;
  pid_t pid = run->pid;
  int wstatus = 0;

  memset(r, 0, sizeof(*r));
  pump(run, NULL, NULL);
  r->timed_out = run->timed_out;
  r->out = steal_pointer(&run->out);
  r->out_len = run->out_len;
  if (run->err_fd >= 0)
    close(run->err_fd);
  if (run->out_fd >= 0)
    close(run->out_fd);
  emit_line(lbp, p);
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
    ;
  /* Nothing of the group may outlive the call (substituter helpers). */
  kill(-pid, SIGKILL);
  sigaction(SIGPIPE, &run->old_pipe, NULL);
  r->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  if (r->out == NULL)
    r->out = xmalloc0(1);
  {
    size_t total = 1;
    for (size_t i = 0; i < lbp->nkept; i++)
      total += strlen(lbp->kept[i]) + 2;
    r->last_err = xmalloc0(total);
    for (size_t i = 0; i < lbp->nkept; i++)
      {
        if (i)
          strcat(r->last_err, "; ");
        strcat(r->last_err, lbp->kept[i]);
        free(lbp->kept[i]);
      }
  }
  free(run);
  return 0;
}

int
frc_proc_run(const struct frc_proc *p, struct frc_proc_result *r, frc_error_t *err)
{
  struct frc_proc_running *run;
  memset(r, 0, sizeof(*r));
  if (frc_proc_start(p, &run, err) < 0)
    return -1;
  return frc_proc_finish(run, r);
}

int
frc_proc_pid(const struct frc_proc_running *run)
{
  return (int) run->pid;
}

void
frc_proc_abort(struct frc_proc_running *run)
{
  struct frc_proc_result r;
  if (run == NULL)
    return;
  kill(-run->pid, SIGKILL);
  kill(run->pid, SIGKILL);
  frc_proc_finish(run, &r);
  frc_proc_result_release(&r);
}

void
frc_proc_result_release(struct frc_proc_result *r)
{
  free(r->out);
  free(r->last_err);
  memset(r, 0, sizeof(*r));
}
